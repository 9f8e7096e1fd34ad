/**
 * The contract between the graph and the kernels: each IR op kind has a lowering that turns one op,
 * with every shape concrete, into the compute kernels that run it. Programs are compiled for fixed
 * sizes (the run's micro-batch rows and its longest sequence; shorter batches are right-padded, which
 * changes no loss and no gradient), so every kernel bakes its sizes in as constants.
 *
 * Binding names tie a kernel to buffers: `in0`, `in1`... are the op's inputs in order, `out0`,
 * `out1`... its outputs, `tmp0`... scratch the lowering asks for, and `rng` the per-step dropout keys
 * (one u32 per dropout op, at index `ctx.rngSlot`, written by the runtime each step as
 * streamKey(seed, streamId(`${stream}@${step}`)) — src/runtime/reference/rng.ts and exec/tensor.ts).
 * Kernels of one op run in order; a later kernel sees what an earlier one wrote.
 */
import type { Attrs, Op } from "../../../ir/index.js";
import type { DeviceCaps } from "../caps.js";
import type { KernelSpec } from "../kernel.js";
import type { MatmulVariant } from "../matmul/index.js";

export interface TensorArg {
  dtype: "f32" | "f16" | "i32";
  /** Concrete shape. */
  shape: number[];
}

export interface LowerContext {
  op: Op;
  inputs: TensorArg[];
  outputs: TensorArg[];
  /** The op's attributes with symbolic dims evaluated. */
  attrs: Attrs;
  caps: DeviceCaps;
  /** The matmul variant this device prefers (measured once per device). */
  matmul: MatmulVariant;
  /** For dropout ops: this op's index in the `rng` key buffer. */
  rngSlot?: number;
}

export interface Lowered {
  kernels: KernelSpec[];
  /** Scratch buffers the kernels bind as `tmp<i>`, in bytes. */
  scratch?: number[];
  /**
   * Outputs that are views of an input (reshape, split_heads...): no kernel runs and the output
   * binds the input's buffer at a byte offset. `{ out: 0, input: 0, offset: 0 }`.
   */
  aliases?: { out: number; input: number; offsetBytes: number }[];
}

export type Lowering = (ctx: LowerContext) => Lowered;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
