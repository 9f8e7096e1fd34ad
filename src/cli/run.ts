/** `pefc run FILE`: train as the spec says, on the WebGPU device or the CPU reference. */
import { diag, formatDiagnostic } from "../diagnostics/index.js";
import { adapterName, openDeviceOrReference } from "../runtime/device/index.js";
import { checkRunOutputs } from "../runtime/train/outputs.js";
import { modelWarnings } from "./model-warnings.js";
import { locateRunError } from "./run-errors.js";
import { adaloraAllocation, adaloraScheduleText } from "../runtime/train/adalora.js";
import { exportMerged } from "../runtime/train/export.js";
import { runTraining } from "../runtime/train/loop.js";
import { ReferenceBackend } from "../runtime/train/reference-backend.js";
import { longestExample, openGpuBackend } from "../runtime/gpu/index.js";
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

/** The exit code of a run stopped by SIGINT (128 + 2), as shells report it. */
export const INTERRUPTED = 130;

export const run: Command = {
  summary: "fine-tune as a .peft file says",
  usage: `pefc run FILE [--device gpu|reference] [--json] [--resume CHECKPOINT_DIR] [--overwrite]

Checks and compiles FILE, loads the model, the data and any adapter to start from, then trains,
logging loss, learning rate and tokens/s, evaluating and saving adapters in PEFT's layout as the
file says. By default every step runs on the WebGPU device (a GPU, or Mesa's llvmpipe on the CPU),
or on the CPU reference when there is no WebGPU adapter; --device gpu insists on the WebGPU device,
--device reference runs on the CPU reference executor (slow, exact).

Before the first step every output path is checked: pefc writes only into new or empty folders and
into its own earlier outputs, and refuses a folder holding the spec or its data. A rerun into an
earlier run's checkpoints takes --resume (continue) or --overwrite (start over). Ctrl-C stops after
the current step and saves a checkpoint to resume from.`,
  options: {
    device: { type: "string", description: `where to compute: ${DEVICES.join(", ")}` },
    json: { type: "boolean", description: "one JSON object per logged step, eval and save" },
    resume: { type: "string", description: "continue from a checkpoint folder (checkpoint-N) this spec's run wrote" },
    overwrite: { type: "boolean", description: "replace files and folders at the output paths that pefc did not write, or an earlier run's" },
  },
  async run(files, values, io) {
    if (files.length !== 1) {
      io.err("pefc run: give exactly one FILE");
      return 1;
    }
    const asked = values.device as string | undefined;
    const device = asked ?? "gpu";
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
      const s = await prepareSession(input.bytes!, input.name).catch((e: unknown) => {
        throw locateRunError(e, input.bytes!, input.name);
      });
      const overwrite = Boolean(values.overwrite);
      const resumeDir = typeof values.resume === "string" ? values.resume : undefined;
      const outputProblems = checkRunOutputs(s, { overwrite, ...(resumeDir ? { resume: resumeDir } : {}) });
      if (outputProblems.length > 0) throw new DiagnosticsError(outputProblems);
      const report = makeReporter({
        json: Boolean(values.json),
        tty: stderrIsTerminal() && !values.json,
        write: (l) => io.out(l),
        bar: (t) => process.stderr.write(t),
      });
      // No --device: the WebGPU device when there is one, else the CPU reference, said in one line.
      const dev = await openDeviceOrReference(asked as "gpu" | "reference" | undefined, (line: string) => report.info(line));
      const methods = s.spec.methods.map((m) => (m.method === "adapter" ? `adapter ${m.variant}` : m.method)).join(" + ") || "unfreeze";
      const on = dev ? adapterName(dev.info.adapter) : "CPU reference";
      report.info(`${s.spec.model!.source}: ${s.profile.name}, ${methods}; ${s.train.length} train records${s.eval ? `, ${s.eval.length} eval` : ""}; ${s.totalSteps} steps (${s.stepsPerEpoch} per epoch) on ${on}`);
      const trunc = s.stats.train.truncatedResponseShare;
      if (trunc > 0.2) report.info(`warning P606: ${(trunc * 100).toFixed(0)}% of responses were cut to fit the length budget`);
      for (const w of modelWarnings(s.spec, s.profile, s.ctx.targets, longestExample(s))) report.info(formatDiagnostic(w));
      if (s.spec.train.logEvery.every > 1 || s.spec.train.logEvery.unit === "epochs") report.info("logged loss: the mean over the steps since the previous line; metrics.jsonl has every step's loss");
      for (const [st, d] of [[s.stats.train, s.spec.data.train], [s.stats.eval, s.spec.data.eval]] as const) {
        if (st && d && st.skipped > 0) report.info(formatDiagnostic(diag("P620", s.spec.file, d.span, [st.file, st.skipped, st.records, st.skipReasons[0] ?? ""])));
      }
      const adalora = adaloraAllocation(s);
      const ada = s.spec.methods.find((m) => m.method === "adalora");
      if (adalora && ada?.method === "adalora") report.info(adaloraScheduleText(adalora, ada.options.init_r, s.totalSteps));
      const backend: TrainBackend = dev ? await openGpuBackend(s, dev, { compiling: (d, t) => report.compiling?.(d, t) }) : new ReferenceBackend(s.trainGraph, s.evalGraph, await allParams(s), s.spec.train.seed, adalora);
      const resume = resumeDir ? await resumeFrom(resolve(resumeDir), s, backend) : undefined;
      if (resume) report.info(`resuming at step ${resume.step} of ${resume.totalSteps} from ${resumeDir}`);
      const stop = new AbortController();
      const release = onInterrupt(() => stop.abort());
      let result;
      try {
        result = await runTraining(s, backend, report, { ...(resume ? { resume } : {}), overwrite, stop: stop.signal });
      } finally {
        release();
      }
      if (result.interrupted) {
        const at = `interrupted after step ${result.interrupted.step} of ${s.totalSteps}`;
        if (result.interrupted.dir) report.info(`${at}: saved ${result.interrupted.dir}\nto continue: pefc run ${input.name} --resume ${result.interrupted.dir}`);
        else report.info(`${at}: nothing saved (the spec has no save statement)`);
        backend.dispose();
        return INTERRUPTED;
      }
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

/** Whether progress may redraw a line: stderr is a terminal, or the parent that filters Dawn's output for this process has one. */
function stderrIsTerminal(): boolean {
  return Boolean(process.stderr.isTTY) || process.env["PEFC_STDERR_TTY"] === "1";
}

/**
 * Calls `stop` on the first SIGINT; a second one a while later ends the process at once. A second
 * within a second of the first is the same Ctrl-C (a terminal signals the whole process group,
 * and the parent filtering Dawn's output passes it on too). Returns the function that uninstalls it.
 */
export function onInterrupt(stop: () => void): () => void {
  let first = 0;
  const handler = () => {
    if (first === 0) {
      first = Date.now();
      stop();
    } else if (Date.now() - first > 1000) {
      process.exit(INTERRUPTED);
    }
  };
  process.on("SIGINT", handler);
  return () => process.off("SIGINT", handler);
}
