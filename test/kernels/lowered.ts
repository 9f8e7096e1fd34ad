// Runs one IR op through its registered lowering on the test device and through the CPU reference
// kernel the executor maps it to, so each family test is a list of (op, inputs, attrs) cases.
// Outputs start as NaN and scratch as NaN bytes, so an element a kernel forgets to write, or
// scratch it reads before writing, shows up as a mismatch.

import { lowering, type Lowered, type TensorArg } from "../../src/codegen/wgsl/lower/index.js";
import { inferOp, type Attrs, type Op } from "../../src/ir/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import type { DeviceCaps } from "../../src/codegen/wgsl/caps.js";
import type { MatmulVariant } from "../../src/codegen/wgsl/matmul/index.js";
import { f32ArrayToF16, f16ArrayToF32 } from "../../src/runtime/io/half.js";
import { BACKWARD_KERNELS } from "../../src/runtime/reference/exec/backward.js";
import { FUSED_KERNELS } from "../../src/runtime/reference/exec/fused.js";
import { FORWARD_KERNELS, type KernelCtx } from "../../src/runtime/reference/exec/forward.js";
import { numelOf, streamId, type Data } from "../../src/runtime/reference/exec/tensor.js";
import { streamKey } from "../../src/runtime/reference/rng.js";
import { expectClose } from "./helpers.js";

export interface TestTensor {
  dtype: "f32" | "f16" | "i32";
  shape: number[];
  /** f32 values (rounded to f16 on upload when dtype is f16) or i32 values. */
  data: Float32Array | Int32Array;
}

export const f32t = (shape: number[], data: Float32Array): TestTensor => ({ dtype: "f32", shape, data });
export const i32t = (shape: number[], data: Int32Array): TestTensor => ({ dtype: "i32", shape, data });

export const SEED = 1234;
export const STEP = 7;

export interface RunResult {
  outputs: (Float32Array | Int32Array)[];
  lowered: Lowered;
}

function outputTypes(op: string, ins: TestTensor[], attrs: Attrs): TensorArg[] {
  const r = inferOp(op, ins.map((t) => ({ dtype: t.dtype, shape: t.shape })), attrs);
  if (typeof r === "string") throw new Error(`${op}: ${r}`);
  return r.map((t) => ({ dtype: t.dtype, shape: t.shape.map((d) => (typeof d === "number" ? d : NaN)) }));
}

function bytesOf(t: TestTensor): ArrayBufferView {
  return t.dtype === "f16" ? f32ArrayToF16(t.data as Float32Array) : t.data;
}

/** Runs the op's kernels in order on the device and reads every output. `caps` overrides the device's (to test another device's variant); `matmul` is the matmul variant lowerings get. */
export async function runLowered(dev: Device, op: string, ins: TestTensor[], attrs: Attrs, rngSlot?: number, caps: Partial<DeviceCaps> = {}, matmul: MatmulVariant = "register"): Promise<RunResult> {
  const lower = lowering(op);
  if (!lower) throw new Error(`no lowering for ${op}`);
  const outs = outputTypes(op, ins, attrs);
  const irOp: Op = { op, module: "test", inputs: ins.map((_, i) => `x${i}`), outputs: outs.map((o, i) => ({ name: `y${i}`, ...o })), attrs };
  const lowered = lower({
    op: irOp,
    inputs: ins.map((t) => ({ dtype: t.dtype, shape: t.shape })),
    outputs: outs,
    attrs,
    caps: { ...dev.caps, ...caps },
    matmul,
    ...(rngSlot !== undefined ? { rngSlot } : {}),
  });
  await dev.prepare(...lowered.kernels);
  const bufs: Record<string, GPUBuffer> = {};
  const owned: GPUBuffer[] = [];
  const make = (name: string, data: ArrayBufferView) => {
    const b = dev.bufferFrom(data, name);
    owned.push(b);
    bufs[name] = b;
  };
  ins.forEach((t, i) => make(`in${i}`, bytesOf(t)));
  const aliased = new Map((lowered.aliases ?? []).map((a) => [a.out, a]));
  outs.forEach((o, i) => {
    if (!aliased.has(i)) make(`out${i}`, new Float32Array(Math.ceil((numelOf(o.shape) * (o.dtype === "f16" ? 2 : 4)) / 4)).fill(NaN));
  });
  (lowered.scratch ?? []).forEach((bytes, i) => make(`tmp${i}`, new Float32Array(Math.ceil(bytes / 4)).fill(NaN)));
  if (rngSlot !== undefined) {
    const keys = new Uint32Array(rngSlot + 1).fill(0xdeadbeef);
    keys[rngSlot] = streamKey(SEED, streamId(`${String(attrs["stream"])}@${STEP}`));
    make("rng", keys);
  }
  try {
    if (lowered.kernels.length) {
      const rec = dev.recorder(op);
      for (const k of lowered.kernels) rec.dispatch(k, bufs);
      rec.submit();
    }
    const outputs: (Float32Array | Int32Array)[] = [];
    for (const [i, o] of outs.entries()) {
      const n = numelOf(o.shape);
      const a = aliased.get(i);
      const src = a ? bufs[`in${a.input}`]! : bufs[`out${i}`]!;
      const bytes = n * (o.dtype === "f16" ? 2 : 4);
      if (a && a.offsetBytes + bytes > src.size) throw new Error(`${op}: alias of out${i} runs past in${a.input}`);
      const raw = await dev.read(src, Math.ceil(bytes / 4) * 4, a ? a.offsetBytes : 0);
      outputs.push(o.dtype === "i32" ? new Int32Array(raw, 0, n) : o.dtype === "f16" ? f16ArrayToF32(new Uint16Array(raw, 0, n)) : new Float32Array(raw, 0, n));
    }
    return { outputs, lowered };
  } finally {
    for (const b of owned) b.destroy();
  }
}

/** The reference executor's kernel for the op, on the f32 data (f16 inputs rounded first). */
export function reference(op: string, ins: TestTensor[], attrs: Attrs): Data[] {
  const k = FORWARD_KERNELS[op] ?? BACKWARD_KERNELS[op] ?? FUSED_KERNELS[op];
  if (!k) throw new Error(`no reference kernel for ${op}`);
  const outs = outputTypes(op, ins, attrs);
  const ctx: KernelCtx = { f64: false, seed: SEED, step: STEP };
  const tensors = ins.map((t) => ({
    shape: t.shape,
    data: t.dtype === "f16" ? f16ArrayToF32(f32ArrayToF16(t.data as Float32Array)) : t.data,
  }));
  return k(tensors, attrs, outs.map((o) => o.shape), ctx);
}

/** Runs both and compares every output with abs + rel tolerance (exact for i32). */
export async function checkOp(
  dev: Device,
  op: string,
  ins: TestTensor[],
  attrs: Attrs,
  tol: { atol: number; rtol: number },
  rngSlot?: number,
  caps: Partial<DeviceCaps> = {},
  matmul: MatmulVariant = "register",
): Promise<RunResult> {
  const got = await runLowered(dev, op, ins, attrs, rngSlot, caps, matmul);
  const want = reference(op, ins, attrs);
  if (got.outputs.length !== want.length) throw new Error(`${op}: ${got.outputs.length} outputs, reference has ${want.length}`);
  got.outputs.forEach((g, i) => {
    const w = want[i]!;
    const cols = lastDim(op, ins, attrs, i);
    expectClose(`${op} out${i}`, g, w, g instanceof Int32Array ? { atol: 0, rtol: 0 } : tol, cols);
  });
  return got;
}

function lastDim(op: string, ins: TestTensor[], attrs: Attrs, i: number): number {
  const s = outputTypes(op, ins, attrs)[i]!.shape;
  return s.length ? s[s.length - 1]! : 1;
}
