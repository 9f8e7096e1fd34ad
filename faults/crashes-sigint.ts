/**
 * The slot for Ctrl-C: `pefc run` interrupted by SIGINT should stop at the next step boundary
 * and save a checkpoint that resumes bit-identically. That stop is not in this build; its cases
 * (SIGINT at random points, the run's exit, the checkpoint it leaves, the resumed run's bytes)
 * plug in here, beside the SIGKILL cases of crashes.ts.
 */
import type { FaultOptions } from "./lib/options.js";
import type { Tally } from "./lib/tally.js";

export async function sigintCases(t: Tally, _o: FaultOptions): Promise<void> {
  t.notes.push("SIGINT cases: no step-boundary stop in this build (slot: faults/crashes-sigint.ts)");
}
