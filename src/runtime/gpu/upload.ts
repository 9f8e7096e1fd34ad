/**
 * Filling a program's parameter buffers one tensor at a time, from wherever the values come
 * (host arrays, or a checkpoint read tensor by tensor): queue.writeBuffer copies each tensor out
 * before the next is asked for, so host memory holds one at a time. A weight split into row
 * blocks (codegen/wgsl/program/split.ts) is fetched once for all its blocks, which are listed
 * together.
 */
import type { ParamLoc } from "../../codegen/wgsl/program/index.js";
import { numel } from "../../ir/index.js";
import type { BaseWeights } from "../train/weights.js";
import { f32ArrayToF16 } from "../io/half.js";
import type { ProgramExecutor } from "./executor.js";

/** A whole tensor's values, as f16 bits when `f16` (the program stores it so) or f32. */
export type ParamSource = (name: string, f16: boolean) => Promise<Float32Array | Uint16Array>;

export async function uploadParams(exec: ProgramExecutor, params: readonly ParamLoc[], source: ParamSource): Promise<void> {
  let last: { name: string; data: Float32Array | Uint16Array } | undefined;
  for (const p of params) {
    const name = p.rowsOf?.name ?? p.name;
    if (last?.name !== name) last = { name, data: await source(name, p.dtype === "f16") };
    const n = numel(p.shape);
    // A row block [rows, cols] of a weight too large for one binding.
    const data = p.rowsOf ? last.data.subarray(p.rowsOf.start * p.shape[1]!, (p.rowsOf.start + p.rowsOf.rows) * p.shape[1]!) : last.data;
    if (data.length !== n) throw new Error(`gpu: parameter ${p.name} has ${data.length} values, expected [${p.shape.join(",")}]`);
    exec.write(p, data);
  }
}

/** Values from `given` first, else streamed from `base`. */
export function paramSource(given: ReadonlyMap<string, Float32Array>, base: BaseWeights | undefined): ParamSource {
  const fromBase = new Set(base?.names ?? []);
  return async (name, f16) => {
    const v = given.get(name);
    if (v) return f16 ? f32ArrayToF16(v) : v;
    if (base && fromBase.has(name)) return f16 ? base.readF16(name) : base.readF32(name);
    throw new Error(`gpu: no starting value for parameter ${name}`);
  };
}
