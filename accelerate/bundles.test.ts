/**
 * An exported bundle trains as pefc trains. For every run PEFT can express on a base model that
 * transformers loads without remote code, pefc trains it on the CPU reference, `export-run` writes
 * its bundle, and the bundle's train.py runs under real transformers + PEFT + Accelerate on one CPU
 * process (`accelerate launch --cpu --num_processes 1 train.py`). Every adapter pefc saved (periodic
 * checkpoints and exports) must have its twin in the bundle with the same tensor keys and shapes and
 * every value within 2e-3; every loss train.py logs must be within 1e-3 of pefc's over the same
 * steps; and pefc must load each adapter train.py saved (PEFT 0.21's adapter_config.json) to the
 * values it saved itself. Some runs also go as 2 data-parallel CPU processes (torchrun over gloo,
 * each process taking every other micro-batch), which must agree with pefc just as well.
 *
 * The runs: the PEFT conformance cases of ../shared/data/peft-conformance/ (stories260K), and the
 * examples on the built-in Llama and GPT-2, with dropout set to 0 (torch's dropout masks are not
 * pefc's) and, for the seed's AdaLoRA run, on tiny-llama instead of tiny-chatglm2 (transformers has
 * no ChatGLM2 of its own: its modelling code comes with THUDM's checkpoint). Every other example is
 * checked to be one export-run refuses, so none is left out unnoticed.
 *
 * Needs the venv of accelerate/setup.sh (or PEFC_HF_PYTHON naming a python that has the
 * packages of accelerate/requirements.txt). Run with `npm run accelerate`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiagnosticsError } from "../src/diagnostics/index.js";
import { exportRun } from "../src/export-run/bundle.js";
import { loadForGeneration } from "../src/runtime/generate/load.js";
import { adaloraAllocation } from "../src/runtime/train/adalora.js";
import { runTraining, type Reporter } from "../src/runtime/train/loop.js";
import { ReferenceBackend } from "../src/runtime/train/reference-backend.js";
import { allParams, prepareSession } from "../src/runtime/train/session.js";
import { discoverCases, maxDiff, mirrorCase, readAdapter } from "../test/conformance/cases.js";
import { HF_PYTHON } from "./python.js";

const TENSOR_TOL = 2e-3;
const LOSS_TOL = 1e-3;
const EXAMPLES = resolve("examples");

interface Run {
  label: string;
  /** The run's folder: run.peft and whatever it reads, writable. */
  dir: string;
}

/** Examples PEFT can express as written, but for dropout; `edit` turns the copy into what runs. */
const EXAMPLE_RUNS: { name: string; edit?: (spec: string) => string }[] = [
  { name: "stories-lora" },
  { name: "ia3" },
  { name: "prefix" },
  { name: "pretokenized" },
  { name: "prompt-tuning" },
  { name: "p-tuning" },
  {
    name: "medical",
    edit: (t) => onLlama(t).replace("on query_key_value", "on q_proj, v_proj"),
  },
  { name: "p-tuning-v2", edit: onLlama },
];
/** The ChatGLM2 examples that PEFT could express: their copies above run on tiny-llama instead. */
const NEEDS_REMOTE_CODE = new Set(["medical", "p-tuning-v2", "chatglm2-6b-medical"]);

/** Runs that also train as 2 data-parallel CPU processes (torchrun, gloo): each takes half the micro-batches. */
const DDP_CASES = new Set(["conformance lora", "conformance adalora", "conformance prefix", "example medical"]);

function onLlama(spec: string): string {
  return spec.replace('model "builtin:tiny-chatglm2"', 'model "builtin:tiny-llama"');
}

const temps: string[] = [];
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

const quiet: Reporter = { step: () => undefined, eval: () => undefined, saved: () => undefined, info: () => undefined };

function exampleRun(name: string, edit: (spec: string) => string = (t) => t): Run {
  const dir = mkdtempSync(join(tmpdir(), `pefc-bundle-${name}-`));
  temps.push(dir);
  const text = edit(readFileSync(join(EXAMPLES, `${name}.peft`), "utf8")).replace(/dropout\s*=\s*[0-9.e-]+/g, "dropout=0");
  writeFileSync(join(dir, "run.peft"), text);
  symlinkSync(join(EXAMPLES, "data"), join(dir, "data"), "dir");
  return { label: `example ${name}`, dir };
}

function conformanceRuns(): Run[] {
  return discoverCases().map((c) => {
    const dir = mirrorCase(c);
    temps.push(join(dir, "../../.."));
    // The mirror links PEFT's own trained adapter in; this check compares pefc with the bundle.
    rmSync(join(dir, "peft-trained"), { force: true });
    return { label: `conformance ${c.name}`, dir };
  });
}

/** Folders under `root` holding adapter_model.safetensors, relative to root: what pefc saved. */
function adapterFolders(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (existsSync(join(d, "adapter_model.safetensors"))) out.push(relative(root, d));
    for (const e of readdirSync(d)) if (statSync(join(d, e)).isDirectory() && !statSync(join(d, e)).isSymbolicLink()) walk(join(d, e));
  };
  for (const e of readdirSync(root)) {
    const p = join(root, e);
    if (statSync(p).isDirectory() && !e.startsWith("bundle") && e !== "data" && e !== "init") walk(p);
  }
  return out.sort();
}

/** train.py's `step N/T  loss X` lines: the mean loss of the steps since the previous line. */
function loggedLosses(log: string): { step: number; loss: number }[] {
  return [...log.matchAll(/^step (\d+)\/\d+ {2}loss ([0-9.]+)/gm)].map((m) => ({ step: Number(m[1]), loss: Number(m[2]) }));
}

/** Runs a bundle: one process under `accelerate launch --cpu`, or `processes` under torchrun (gloo). */
function launch(bundle: string, processes: number): { stdout: string; log: string; status: number | null } {
  const bin = dirname(HF_PYTHON);
  const [cmd, args] =
    processes === 1
      ? [join(bin, "accelerate"), ["launch", "--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "train.py"]]
      : [join(bin, "torchrun"), ["--standalone", "--nproc_per_node", String(processes), "train.py"]];
  const py = spawnSync(cmd, args, {
    cwd: bundle,
    encoding: "utf8",
    env: { ...process.env, HF_HUB_OFFLINE: "1", PYTHONUNBUFFERED: "1", TOKENIZERS_PARALLELISM: "false", ACCELERATE_USE_CPU: "true", OMP_NUM_THREADS: processes === 1 ? "2" : "1" },
  });
  return { stdout: py.stdout, log: `${py.stdout}\n${py.stderr}`, status: py.status };
}

interface PefcRun {
  losses: number[];
  folders: string[];
  model: string;
}

/** Exports the run for `processes` CPU processes, trains the bundle, and compares it with pefc's run. */
async function compareBundle(run: Run, pefc: PefcRun, processes: number): Promise<void> {
  const file = join(run.dir, "run.peft");
  const bundle = join(run.dir, processes === 1 ? "bundle" : `bundle-ddp${processes}`);
  const label = `${run.label}, ${processes} process${processes === 1 ? "" : "es"}`;
  await exportRun(readFileSync(file), file, { to: bundle, overwrite: false, engine: "ddp", gpus: processes, nodes: 1, precision: "no" });
  const py = launch(bundle, processes);
  expect(py.status, `${label}: train.py failed:\n${py.log.slice(-4000)}`).toBe(0);
  expect(py.stdout, `${label}: process count`).toContain(`on ${processes} process(es)`);

  // Losses, over the windows train.py logged.
  const logged = loggedLosses(py.stdout);
  expect(logged.length, `${label}: train.py logged no step:\n${py.stdout}`).toBeGreaterThan(0);
  expect(logged.at(-1)!.step, `${label}: optimizer steps`).toBe(pefc.losses.length);
  let from = 0;
  let lossWorst = 0;
  for (const { step, loss } of logged) {
    const window = pefc.losses.slice(from, step);
    const mine = window.reduce((a, b) => a + b, 0) / window.length;
    lossWorst = Math.max(lossWorst, Math.abs(mine - loss));
    expect(Math.abs(mine - loss), `${label}: loss of steps ${from + 1}..${step}: pefc ${mine}, train.py ${loss}`).toBeLessThanOrEqual(LOSS_TOL);
    from = step;
  }

  // Every adapter pefc saved, against the bundle's.
  const report: string[] = [];
  for (const f of pefc.folders) {
    const theirs = join(bundle, f);
    expect(existsSync(join(theirs, "adapter_model.safetensors")), `${label}: train.py saved no ${f}`).toBe(true);
    const a = (await readAdapter(join(run.dir, f))).tensors;
    const b = (await readAdapter(theirs)).tensors;
    expect([...b.keys()].sort(), `${label}: tensor keys of ${f}`).toEqual([...a.keys()].sort());
    let worst = 0;
    let worstKey = "";
    for (const [k, t] of a) {
      expect(b.get(k)!.shape, `${label}: shape of ${f}/${k}`).toEqual(t.shape);
      const d = maxDiff(t.data, b.get(k)!.data);
      if (d > worst) [worst, worstKey] = [d, k];
    }
    expect(worst, `${label}: ${f}/${worstKey}`).toBeLessThanOrEqual(TENSOR_TOL);
    // pefc reads what PEFT wrote as `generate --adapter` does, to what it reads of its own save.
    const back = (await loadForGeneration(pefc.model, theirs, run.dir)).params;
    const mine = (await loadForGeneration(pefc.model, join(run.dir, f), run.dir)).params;
    expect([...back.keys()].sort(), `${label}: ${f} loaded back`).toEqual([...mine.keys()].sort());
    for (const [k, v] of mine) expect(maxDiff(back.get(k)!, v), `${label}: ${f}/${k} loaded back`).toBeLessThanOrEqual(TENSOR_TOL);
    report.push(`${f || "."}: ${a.size} tensors, max diff ${worst.toExponential(2)}`);
  }
  console.log(`${label}: ${pefc.losses.length} steps, max loss diff ${lossWorst.toExponential(2)}; ${report.join("; ")}`);
}

/** pefc's run on the CPU reference, then its bundle on one process and, given `ddp`, on that many. */
async function check(run: Run, ddp?: number): Promise<void> {
  const file = join(run.dir, "run.peft");
  const s = await prepareSession(readFileSync(file), file);
  const backend = new ReferenceBackend(s.trainGraph, s.evalGraph, await allParams(s), s.spec.train.seed, adaloraAllocation(s));
  let losses: number[];
  try {
    losses = (await runTraining(s, backend, quiet)).losses;
  } finally {
    backend.dispose();
  }
  const folders = adapterFolders(run.dir);
  expect(folders.length, `${run.label}: pefc saved no adapter`).toBeGreaterThan(0);
  const model = s.spec.model!.builtin !== undefined ? `builtin:${s.spec.model!.builtin}` : s.profile.source;
  const pefc = { losses, folders, model };
  await compareBundle(run, pefc, 1);
  if (ddp !== undefined) await compareBundle(run, pefc, ddp);
}

describe("exported bundles under transformers + PEFT + Accelerate, one CPU process", () => {
  beforeAll(() => {
    const probe = spawnSync(HF_PYTHON, ["-c", "import torch, transformers, peft, accelerate; print(torch.__version__, transformers.__version__, peft.__version__, accelerate.__version__)"], { encoding: "utf8" });
    if (probe.status !== 0) {
      throw new Error(`${HF_PYTHON} cannot import torch, transformers, peft and accelerate: run \`bash accelerate/setup.sh\` (or set PEFC_HF_PYTHON)\n${probe.stderr ?? probe.error}`);
    }
    console.log(`torch, transformers, peft, accelerate: ${probe.stdout.trim()}`);
  });

  for (const run of conformanceRuns()) it(run.label, () => check(run, DDP_CASES.has(run.label) ? 2 : undefined));
  for (const e of EXAMPLE_RUNS) {
    const label = `example ${e.name}`;
    it(`${label}${e.edit ? " (on tiny-llama)" : ""}`, () => check(exampleRun(e.name, e.edit), DDP_CASES.has(label) ? 2 : undefined));
  }

  it("leaves out only the examples export-run refuses or whose model needs remote code", async () => {
    const covered = new Set(EXAMPLE_RUNS.filter((e) => !e.edit).map((e) => e.name));
    for (const f of readdirSync(EXAMPLES).filter((n) => n.endsWith(".peft")).sort()) {
      const name = f.replace(/\.peft$/, "");
      if (covered.has(name)) continue;
      if (NEEDS_REMOTE_CODE.has(name)) {
        expect(readFileSync(join(EXAMPLES, f), "utf8"), `${name}: listed as needing ChatGLM2's remote code`).toMatch(/tiny-chatglm2|CHATGLM2_6B/);
        continue;
      }
      const run = exampleRun(name);
      const to = join(run.dir, "bundle");
      const refused = await exportRun(readFileSync(join(run.dir, "run.peft")), join(run.dir, "run.peft"), { to, overwrite: false, engine: "ddp", gpus: 1, nodes: 1, precision: "no" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused instanceof DiagnosticsError ? refused.diagnostics.map((d) => d.code) : refused, `${name}: export-run writes a bundle, so the check must run it`).toEqual(["P508"]);
      expect(existsSync(to), `${name}: a refused export writes nothing`).toBe(false);
    }
  });
});
