// How many worker threads llvmpipe runs compute dispatches on. Mesa's default is one per core;
// pefc asks for two per core unless the user set LP_NUM_THREADS. Like the shader cache folder it
// has to be set before Dawn loads the Vulkan driver, and it changes nothing on other drivers.
//
// Measured on a 2-vCPU VM, stories260K's step (109 dispatches), alternated 40-step runs: with 4
// workers the median was 60.8-65.1 ms at 1.75-1.77 cores busy, with 2 workers 62.1-79.9 ms at
// 1.35-1.75 (a step waited whenever the host held back one vCPU and its worker); 3 and 8 workers
// were slower than 4 (66-76 ms). GPT-2 small's longer kernels ran the same either way.

import { availableParallelism } from "node:os";

/** Sets LP_NUM_THREADS to twice the cores (at most 32, llvmpipe's limit) unless it is set; returns the value in force. */
export function spareLlvmpipeWorkers(env: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): string {
  const set = env["LP_NUM_THREADS"];
  if (set !== undefined && set.trim() !== "") return set;
  const n = String(Math.min(32, Math.max(1, 2 * cores)));
  env["LP_NUM_THREADS"] = n;
  return n;
}
