// `npm run bench -- --kernels`: ms and GFLOP/s of whole op lowerings (every kernel of the op in
// one submit), for the hand-written families whose speed is tuned on llvmpipe: attention forward
// and backward at a GPT-2-ish size and two small-model shapes, and linear_fused against the
// two-matmul form it replaces (the base matmul, then an accumulating rank-r matmul over it).

import { matmulKernel, type KernelSpec, type MatmulVariant } from "../src/codegen/wgsl/index.js";
import { lowering, type Lowered, type TensorArg } from "../src/codegen/wgsl/lower/index.js";
import { inferOp, type Attrs, type Op } from "../src/ir/index.js";
import { median, type Device } from "../src/runtime/device/index.js";

interface OpCase {
  name: string;
  op: string;
  inputs: TensorArg[];
  attrs: Attrs;
}

function attentionCases(): OpCase[] {
  const shapes = [
    { name: "gpt-ish B1 T256 Hq8 Hkv2 hd64", B: 1, T: 256, Hq: 8, Hkv: 2, hd: 64 },
    { name: "stories260K B8 T128 Hq8 Hkv4 hd8", B: 8, T: 128, Hq: 8, Hkv: 4, hd: 8 },
    { name: "tiny-chatglm B1 T385 Hq4 Hkv2 hd16", B: 1, T: 385, Hq: 4, Hkv: 2, hd: 16 },
  ];
  const out: OpCase[] = [];
  for (const s of shapes) {
    const q: TensorArg = { dtype: "f32", shape: [s.B, s.T, s.Hq, s.hd] };
    const k: TensorArg = { dtype: "f32", shape: [s.B, s.T, s.Hkv, s.hd] };
    const attrs = { causal: true, scale: 1 / Math.sqrt(s.hd) };
    out.push({ name: `attention fwd ${s.name}`, op: "attention", inputs: [q, k, k], attrs });
    out.push({ name: `attention bwd ${s.name}`, op: "attention_backward", inputs: [q, k, k, q, q], attrs });
  }
  return out;
}

function linearFusedCases(): OpCase[] {
  const M = 512;
  const N = 768;
  const K = 768;
  const r = 8;
  const f = (shape: number[], dtype: TensorArg["dtype"] = "f32"): TensorArg => ({ dtype, shape });
  return [
    {
      name: `linear_fused ${M}x${N}x${K} r${r} bias+lora+res`,
      op: "linear_fused",
      inputs: [f([M, K]), f([N, K]), f([N]), f([M, r]), f([N, r]), f([M, N])],
      attrs: { bias: true, lora_scale: 2, residual: true },
    },
    {
      name: `linear_fused ${M}x${N}x${K} r${r} lora+res w[K,N]`,
      op: "linear_fused",
      inputs: [f([M, K]), f([K, N]), f([M, r]), f([N, r]), f([M, N])],
      attrs: { transposed: true, bias: false, lora_scale: 2, residual: true },
    },
  ];
}

function lower(dev: Device, c: OpCase, matmul: MatmulVariant): { lowered: Lowered; outputs: TensorArg[] } {
  const inferred = inferOp(c.op, c.inputs, c.attrs);
  if (typeof inferred === "string") throw new Error(`${c.name}: ${inferred}`);
  const outputs = inferred.map((t) => ({ dtype: t.dtype, shape: t.shape.map(Number) }));
  const op: Op = { op: c.op, module: "bench", inputs: c.inputs.map((_, i) => `x${i}`), outputs: outputs.map((o, i) => ({ name: `y${i}`, ...o })), attrs: c.attrs };
  const fn = lowering(c.op);
  if (!fn) throw new Error(`no lowering for ${c.op}`);
  return { lowered: fn({ op, inputs: c.inputs, outputs, attrs: c.attrs, caps: dev.caps, matmul }), outputs };
}

const bytesOf = (t: TensorArg): number => t.shape.reduce((a, b) => a * b, 1) * (t.dtype === "f16" ? 2 : 4);

/** Median ms of `kernels` run in order, `reps` times per submit, on buffers named by `bytes`. */
async function timeKernels(dev: Device, kernels: KernelSpec[], bytes: Record<string, number>): Promise<number> {
  await dev.prepare(...kernels);
  const bufs: Record<string, GPUBuffer> = {};
  for (const [name, n] of Object.entries(bytes)) {
    const data = new Float32Array(Math.ceil(n / 4));
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.5;
    bufs[name] = dev.bufferFrom(data, name);
  }
  try {
    const flops = kernels.reduce((a, k) => a + k.flops, 0);
    const reps = Math.max(1, Math.min(16, Math.round(4e8 / flops)));
    const record = (rec: { dispatch: (s: KernelSpec, b: Record<string, GPUBuffer>) => void }): void => {
      for (let i = 0; i < reps; i++) for (const k of kernels) rec.dispatch(k, bufs);
    };
    await dev.time(record, 1);
    const { ms } = await dev.time(record, 3);
    return median(ms) / reps;
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

function row(name: string, kernels: KernelSpec[], ms: number): string {
  const flops = kernels.reduce((a, k) => a + k.flops, 0);
  return `  ${name.padEnd(48)} ${ms.toFixed(2).padStart(9)} ms ${(flops / (ms * 1e6)).toFixed(2).padStart(7)} GFLOP/s  (${kernels.length} kernel${kernels.length > 1 ? "s" : ""})`;
}

async function timeOp(dev: Device, c: OpCase, matmul: MatmulVariant): Promise<string> {
  const { lowered, outputs } = lower(dev, c, matmul);
  const bytes: Record<string, number> = {};
  c.inputs.forEach((t, i) => (bytes[`in${i}`] = bytesOf(t)));
  outputs.forEach((t, i) => (bytes[`out${i}`] = bytesOf(t)));
  (lowered.scratch ?? []).forEach((n, i) => (bytes[`tmp${i}`] = n));
  return row(c.name, lowered.kernels, await timeKernels(dev, lowered.kernels, bytes));
}

/** The form linear_fused had before it was one kernel: base (+bias) matmul, then C += s·u·Bᵀ + res. */
async function timeTwoMatmuls(dev: Device, c: OpCase, matmul: MatmulVariant): Promise<string> {
  const t = c.attrs["transposed"] === true;
  const bias = c.attrs["bias"] === true;
  const [x, w] = c.inputs as [TensorArg, TensorArg];
  const K = x.shape[1]!;
  const M = x.shape[0]!;
  const N = t ? w.shape[1]! : w.shape[0]!;
  const u = c.inputs[bias ? 3 : 2]!;
  const r = u.shape[1]!;
  const base = matmulKernel({ M, N, K, aLayout: "mk", bLayout: t ? "kn" : "nk", bias, names: { a: "x", b: "w", bias: "bias", c: "y" } }, matmul, dev.caps);
  const lora = matmulKernel(
    {
      M, N, K: r, aLayout: "mk", bLayout: "nk", alpha: 2, accumulate: true, names: { a: "u", b: "lb", c: "y" },
      epilogue: { bindings: [{ name: "res", type: "array<f32>", access: "read", elem: "f32" }], apply: (v, m, n) => `${v} + res[${m} * N + ${n}]` },
    },
    matmul,
    dev.caps,
  );
  const bytes = { x: 4 * M * K, w: 4 * N * K, bias: 4 * N, u: 4 * M * r, lb: 4 * N * r, res: 4 * M * N, y: 4 * M * N };
  return row(`${c.name} (two matmuls)`, [base, lora], await timeKernels(dev, [base, lora], bytes));
}

export async function benchKernels(dev: Device, matmul: MatmulVariant, quick: boolean): Promise<void> {
  console.log(`\nop lowerings, median of 3 warm runs (matmul variant ${matmul}):`);
  const att = attentionCases();
  for (const c of quick ? att.slice(0, 2) : att) console.log(await timeOp(dev, c, matmul));
  for (const c of linearFusedCases()) {
    console.log(await timeTwoMatmuls(dev, c, matmul));
    console.log(await timeOp(dev, c, matmul));
  }
}
