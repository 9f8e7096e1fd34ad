/**
 * Checkpoints that resume: beside the adapter files (adapter_config.json, adapter_model.safetensors)
 * each checkpoint folder holds trainer_state.json (where the run is: step, epoch, the next batch
 * group, the loss history) and trainer_tensors.safetensors (every changing parameter at full shape,
 * the optimizer moments, AdaLoRA's importance EMAs). The folder is written whole and swapped in
 * atomically, so a crash leaves the previous checkpoint intact.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { openSafetensorsFile } from "../io/checkpoint.js";
import { UserError } from "../io/errors.js";
import { serializeSafetensors, type TensorToWrite } from "../io/index.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { TrainSnapshot } from "./backend.js";
import type { EvalLog } from "./loop.js";

export const STATE_FILE = "trainer_state.json";
export const TENSORS_FILE = "trainer_tensors.safetensors";
export const STATE_FORMAT = 1;

export interface TrainerPosition {
  step: number;
  /** Epoch (0-based) of the next batch group, and that group's index in the epoch's order. */
  epoch: number;
  group: number;
  totalSteps: number;
  losses: number[];
  evals: EvalLog[];
}

export interface TrainerState extends TrainerPosition {
  format: number;
  specFile: string;
  seed: number;
}

export async function writeTrainerFiles(dir: string, state: TrainerState, snap: TrainSnapshot): Promise<void> {
  const tensors: TensorToWrite[] = [];
  const add = (prefix: string, m: ReadonlyMap<string, Float32Array>) => {
    for (const [k, v] of [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) tensors.push({ name: `${prefix}${k}`, dtype: "F32", shape: [v.length], data: v });
  };
  add("param:", snap.params);
  add("optim:", snap.optim);
  if (snap.allocator) add("allocator:", snap.allocator.tensors);
  const json = { ...state, ...(snap.allocator?.rankPattern ? { rankPattern: snap.allocator.rankPattern } : {}) };
  await writeFileAtomic(join(dir, STATE_FILE), JSON.stringify(json, null, 2) + "\n");
  await writeFileAtomic(join(dir, TENSORS_FILE), serializeSafetensors(tensors, { format: "pt" }));
}

export async function readTrainerFiles(dir: string): Promise<{ state: TrainerState; snapshot: TrainSnapshot }> {
  const file = join(dir, STATE_FILE);
  let state: TrainerState & { rankPattern?: Record<string, boolean[]> };
  try {
    state = JSON.parse(await readFile(file, "utf8")) as typeof state;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "not found: --resume takes a checkpoint folder written by pefc run (checkpoint-N)" : `unreadable (${(e as Error).message})`;
    throw new UserError(`${file}: ${why}`, { file });
  }
  if (state.format !== STATE_FORMAT) throw new UserError(`${file}: trainer state format ${String(state.format)}; this pefc reads ${STATE_FORMAT}`, { file });
  const st = await openSafetensorsFile(join(dir, TENSORS_FILE));
  const snap: TrainSnapshot = { step: state.step, params: new Map(), optim: new Map() };
  const alloc = new Map<string, Float32Array>();
  for (const name of st.tensors.keys()) {
    const data = await st.readF32(name);
    const [kind, key] = [name.slice(0, name.indexOf(":")), name.slice(name.indexOf(":") + 1)];
    if (kind === "param") snap.params.set(key, data);
    else if (kind === "optim") snap.optim.set(key, data);
    else if (kind === "allocator") alloc.set(key, data);
  }
  if (alloc.size > 0 || state.rankPattern) snap.allocator = { tensors: alloc, ...(state.rankPattern ? { rankPattern: state.rankPattern } : {}) };
  return { state, snapshot: snap };
}
