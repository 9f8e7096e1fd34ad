/**
 * A Program is a compiled training step as plain data: the kernels, the device buffers with their
 * sizes, where every tensor lives (buffer, byte offset) and the command lists the runtime records
 * (dispatches with their bindings, buffer copies). It is built for fixed sizes (B, T) and holds
 * both the training step and the evaluation forward, so the two share parameter buffers and one
 * activation pool (they never run at the same time). Nothing here touches a device.
 */
import type { KernelSpec } from "../kernel.js";

/** Why a buffer exists; the memory report groups bytes by it. */
export type BufferRole =
  | "weight" /* frozen parameter */
  | "trainable" /* arena of trainable parameters */
  | "grad" /* arena of gradients summed over micro-batches */
  | "grad-micro" /* arena one micro-batch's gradients are written to */
  | "state" /* arena of one optimizer-state slot (m, v, momentum) */
  | "input" /* per-batch graph input: ids, labels, positions, lr, step */
  | "activation" /* pooled: activations, scratch, update outputs */
  | "rng"; /* dropout keys, one u32 per dropout op */

export interface BufferDecl {
  id: number;
  label: string;
  bytes: number;
  role: BufferRole;
}

/** A byte range of one buffer; offsets bound as storage are multiples of 256. */
export interface Slice {
  buffer: number;
  offset: number;
  bytes: number;
}

export interface DispatchCmd {
  kind: "dispatch";
  /** Index into Program.kernels. */
  kernel: number;
  /** The op's first output (or a description for program-made kernels). */
  label: string;
  op: string;
  bindings: Record<string, Slice>;
  workgroups: [number, number, number];
}

export interface CopyCmd {
  kind: "copy";
  src: Slice;
  dst: Slice;
  label: string;
}

export type Command = DispatchCmd | CopyCmd;

export interface TensorLoc extends Slice {
  dtype: "f32" | "f16" | "i32";
  shape: number[];
}

export interface ParamLoc extends TensorLoc {
  name: string;
  trainable: boolean;
  /** A row block of a frozen weight too large for one binding (split.ts): filled from rows start.. of `name`. */
  rowsOf?: { name: string; start: number; rows: number };
}

/** One dropout op's slot in an entry's rng buffer: key = streamKey(seed, streamId(`${stream}@${step}`)). */
export interface RngSlot {
  slot: number;
  stream: string;
}

export interface StepEntry {
  /** Once per step, before the first micro-batch: the ops that read no per-batch input (build.ts, planPrologue). */
  prologue: Command[];
  /** Forward and backward of one micro-batch; writes the micro-batch gradients. */
  micro: Command[];
  /** After the first micro-batch: the sums start as its gradients. */
  accumulateFirst: Command[];
  /** After every later micro-batch: the sums grow by its gradients. */
  accumulate: Command[];
  /** Clipping and the optimizer, once per step; ends with the updated tensors copied home. */
  update: Command[];
  loss: Slice;
  gradNorm?: Slice;
  /** Summed gradient of each trainable parameter (after the step: the sum the update used). */
  grads: Record<string, Slice>;
  /** Clipped gradients, kept until the next step (AdaLoRA's allocator reads them). */
  clipped: Record<string, Slice>;
  rng: { buffer: number; slots: RngSlot[] };
}

export interface EvalEntry {
  commands: Command[];
  loss: Slice;
  rng: { buffer: number; slots: RngSlot[] };
}

/** A forward pass with named outputs (the decode step: no loss, `logits` read back). */
export interface ForwardEntry {
  commands: Command[];
  outputs: Record<string, TensorLoc>;
  rng: { buffer: number; slots: RngSlot[] };
}

export interface MemoryReport {
  /** Every buffer together: everything is allocated up front, so this is the peak. */
  peakBytes: number;
  byRole: Record<BufferRole, number>;
  buffers: number;
  activationBuffers: number;
  /** Activations that backward reads (graph.saved), at their sizes. */
  savedBytes: number;
  /** Bytes the activations would take without reuse. */
  unpooledActivationBytes: number;
}

export interface Program {
  B: number;
  T: number;
  kernels: KernelSpec[];
  buffers: BufferDecl[];
  params: ParamLoc[];
  /** Per-batch inputs (input_ids, labels, positions, optim.lr, optim.step) by name. */
  inputs: Record<string, TensorLoc>;
  /** Optimizer state tensors by graph input name (`optim.m.<param>`). */
  state: Record<string, TensorLoc>;
  step?: StepEntry;
  eval?: EvalEntry;
  forward?: ForwardEntry;
  memory: MemoryReport;
}

/** Storage binding offsets must be multiples of this (minStorageBufferOffsetAlignment). */
export const BINDING_ALIGN = 256;

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
