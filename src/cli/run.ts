/** `pefc run FILE`: train as the spec says, on the WebGPU device or the CPU reference. */
import { diag, formatDiagnostic } from "../diagnostics/index.js";
import { isUserError } from "../runtime/io/errors.js";
import { adaloraAllocation } from "../runtime/train/adalora.js";
import { exportMerged } from "../runtime/train/export.js";
import { runTraining } from "../runtime/train/loop.js";
import { ReferenceBackend } from "../runtime/train/reference-backend.js";
import { openGpuBackend } from "../runtime/gpu/index.js";
import { makeReporter } from "../runtime/train/reporter.js";
import { allParams, DiagnosticsError, prepareSession } from "../runtime/train/session.js";
import type { Command } from "./commands.js";
import { userErrors } from "./errors.js";
import { resolve } from "node:path";
import { readTrainerFiles, type TrainerPosition } from "../runtime/train/checkpoint.js";
import type { TrainBackend } from "../runtime/train/backend.js";
import type { Session } from "../runtime/train/session.js";
import { UserError } from "../runtime/io/errors.js";
import { readInput } from "./io.js";

const DEVICES = ["gpu", "reference"];

export const run: Command = {
  summary: "fine-tune as a .peft file says",
  usage: `pefc run FILE [--device gpu|reference] [--json] [--resume CHECKPOINT_DIR]

Checks and compiles FILE, loads the model, the data and any adapter to start from, then trains,
logging loss, learning rate and tokens/s, evaluating and saving adapters in PEFT's layout as the
file says. By default every step runs on the WebGPU device (a GPU, or Mesa's llvmpipe on the CPU);
--device reference runs it on the CPU reference executor instead (slow, exact).`,
  options: {
    device: { type: "string", description: `where to compute: ${DEVICES.join(", ")}` },
    json: { type: "boolean", description: "one JSON object per logged step, eval and save" },
    resume: { type: "string", description: "continue from a checkpoint folder (checkpoint-N) this spec's run wrote" },
  },
  async run(files, values, io) {
    if (files.length !== 1) {
      io.err("pefc run: give exactly one FILE");
      return 1;
    }
    const device = (values.device as string | undefined) ?? "gpu";
    if (!DEVICES.includes(device)) {
      io.err(`pefc run: --device takes ${DEVICES.join(" or ")}, not '${device}'`);
      return 1;
    }
    const input = readInput(files[0]!);
    if (input.error) {
      io.err(formatDiagnostic(input.error));
      return 1;
    }
    return userErrors(io, "run", async () => {
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
      if (trunc > 0.2) report.info(`warning P606: ${(trunc * 100).toFixed(0)}% of responses were cut to fit the length budget`);
      for (const [st, d] of [[s.stats.train, s.spec.data.train], [s.stats.eval, s.spec.data.eval]] as const) {
        if (st && d && st.skipped > 0) report.info(formatDiagnostic(diag("P620", s.spec.file, d.span, [st.file, st.skipped, st.records, st.skipReasons[0] ?? ""])));
      }
      const adalora = adaloraAllocation(s);
      const backend: TrainBackend = device === "gpu" ? await openGpuBackend(s) : new ReferenceBackend(s.trainGraph, s.evalGraph, await allParams(s), s.spec.train.seed, adalora);
      const resume = typeof values.resume === "string" ? await resumeFrom(resolve(values.resume), s, backend) : undefined;
      if (resume) report.info(`resuming at step ${resume.step} of ${resume.totalSteps} from ${values.resume}`);
      await runTraining(s, backend, report, resume ? { resume } : {});
      for (const e of s.spec.export.filter((x) => x.what === "merged")) report.saved(await exportMerged(s, backend, e.dir), s.totalSteps);
      backend.dispose();
      return 0;
    });
  },
};

/** Restores `backend` from a checkpoint folder, after checking it belongs to this spec's run. */
async function resumeFrom(dir: string, s: Session, backend: TrainBackend): Promise<TrainerPosition> {
  const { state, snapshot } = await readTrainerFiles(dir);
  if (state.totalSteps !== s.totalSteps) {
    throw new UserError(`${dir}: the checkpoint is of a run of ${state.totalSteps} steps; this spec now makes ${s.totalSteps}. Resume with the spec (and data) the run started with.`, { file: dir });
  }
  const shapes = new Map(s.trainGraph.params.map((p) => [p.name, p.shape.reduce((a, b) => a * b, 1)]));
  for (const [name, v] of snapshot.params) {
    const n = shapes.get(name);
    if (n === undefined || n !== v.length) {
      throw new UserError(`${dir}: tensor ${name} ${n === undefined ? "is not a parameter of this spec's graph" : `has ${v.length} values, the graph needs ${n}`}; the spec changed since the checkpoint`, { file: dir, tensor: name });
    }
  }
  await backend.restore(snapshot);
  return state;
}
