/** `pefc run FILE`: train as the spec says, on the WebGPU device or the CPU reference. */
import { formatDiagnostic } from "../diagnostics/index.js";
import { isUserError } from "../runtime/io/errors.js";
import { adaloraAllocation } from "../runtime/train/adalora.js";
import { exportMerged } from "../runtime/train/export.js";
import { runTraining } from "../runtime/train/loop.js";
import { ReferenceBackend } from "../runtime/train/reference-backend.js";
import { makeReporter } from "../runtime/train/reporter.js";
import { DiagnosticsError, prepareSession } from "../runtime/train/session.js";
import type { Command } from "./commands.js";
import { readInput } from "./io.js";

const DEVICES = ["reference"];

export const run: Command = {
  summary: "fine-tune as a .peft file says",
  usage: `pefc run FILE [--device reference] [--json]

Checks and compiles FILE, loads the model, the data and any adapter to start from, then trains,
logging loss, learning rate and tokens/s, evaluating and saving adapters in PEFT's layout as the
file says. --device reference runs every step on the CPU reference executor (slow, exact).`,
  options: {
    device: { type: "string", description: `where to compute: ${DEVICES.join(", ")}` },
    json: { type: "boolean", description: "one JSON object per logged step, eval and save" },
  },
  async run(files, values, io) {
    if (files.length !== 1) {
      io.err("pefc run: give exactly one FILE");
      return 1;
    }
    const device = (values.device as string | undefined) ?? "reference";
    if (!DEVICES.includes(device)) {
      io.err(`pefc run: --device takes ${DEVICES.join(" or ")}, not '${device}'`);
      return 1;
    }
    const input = readInput(files[0]!);
    if (input.error) {
      io.err(formatDiagnostic(input.error));
      return 1;
    }
    try {
      const s = await prepareSession(input.bytes!, input.name);
      const report = makeReporter({
        json: Boolean(values.json),
        tty: Boolean(process.stderr.isTTY) && !values.json,
        write: (l) => io.out(l),
        bar: (t) => process.stderr.write(t),
      });
      const methods = s.spec.methods.map((m) => (m.method === "adapter" ? `adapter ${m.variant}` : m.method)).join(" + ") || "unfreeze";
      report.info(`${s.spec.model!.source}: ${s.profile.name}, ${methods}; ${s.train.length} train records${s.eval ? `, ${s.eval.length} eval` : ""}; ${s.totalSteps} steps (${s.stepsPerEpoch} per epoch) on ${device}`);
      const trunc = s.stats.train.truncatedResponseShare;
      if (trunc > 0.2) report.info(`note: ${(trunc * 100).toFixed(0)}% of responses were cut at max_target (P606)`);
      const adalora = adaloraAllocation(s);
      const backend = new ReferenceBackend(s.trainGraph, s.evalGraph, s.params, s.spec.train.seed, adalora);
      await runTraining(s, backend, report);
      for (const e of s.spec.export.filter((x) => x.what === "merged")) report.saved(await exportMerged(s, backend, e.dir), s.totalSteps);
      backend.dispose();
      return 0;
    } catch (e) {
      if (e instanceof DiagnosticsError) {
        for (const d of e.diagnostics) io.err(formatDiagnostic(d));
        return 1;
      }
      if (isUserError(e)) {
        io.err(`pefc run: ${(e as Error).message}`);
        return 1;
      }
      throw e;
    }
  },
};
