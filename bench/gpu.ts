// `scripts/gpu-bench.sh` runs this on a machine with a real GPU: the adapter and its features,
// matmul TFLOP/s (f32, and f16 weights where shader-f16 is there) of both variants at large square
// shapes, linear_fused against the two matmuls it replaces (bench/kernels.ts), and a
// ChatGLM2-6B-shaped AdaLoRA step (random f16 weights, the real config) with its tokens/s and the
// program's planned peak device memory. `--layers N` keeps N of the 28 layers (the step's time
// scales about linearly), `--batch B --seq T` sets the shape (default 1 x 512), `--steps S`.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MATMUL_VARIANTS, matmulKernel, type MatmulProblem, type MatmulVariant } from "../src/codegen/wgsl/index.js";
import { builtinConfig } from "../src/models/builtin.js";
import { chooseMatmulVariant, median, openDevice, type Device } from "../src/runtime/device/index.js";
import { openGpuBackend } from "../src/runtime/gpu/index.js";
import { epochGroups } from "../src/runtime/train/loop.js";
import { benchKernels } from "./kernels.js";
import { session, syntheticModel } from "./train.js";

const argv = process.argv.slice(2);
const opt = (name: string, d: number): number => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : d;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} takes a positive integer`);
  return v;
};

async function tflops(dev: Device, p: MatmulProblem, v: MatmulVariant): Promise<string> {
  try {
    const spec = matmulKernel(p, v, dev.caps);
    await dev.prepare(spec);
    const bufs = {
      a: dev.createBuffer(4 * p.M * p.K),
      b: dev.createBuffer((p.bF16 ? 2 : 4) * p.N * p.K),
      c: dev.createBuffer(4 * p.M * p.N),
    };
    const reps = 8;
    const record = (rec: { dispatch: (s: typeof spec, b: typeof bufs) => void }) => {
      for (let i = 0; i < reps; i++) rec.dispatch(spec, bufs);
    };
    await dev.time(record, 1);
    const t = await dev.time(record, 5);
    for (const b of Object.values(bufs)) b.destroy();
    return `${((spec.flops * reps) / (median(t.ms) * 1e9)).toFixed(2)} TFLOP/s (${t.method})`;
  } catch (e) {
    return `failed: ${(e as Error).message.split("\n")[0]}`;
  }
}

const dev = await openDevice();
const a = dev.info.adapter;
console.log(`date: ${new Date().toISOString()}`);
console.log(`device: ${a.description || a.device} (${a.vendor}/${a.architecture}${a.isCpu ? ", CPU adapter" : ""})`);
console.log(`features: ${dev.info.features.join(", ")}`);
const matrix = dev.info.features.filter((f) => /subgroup-matrix|cooperative/.test(f));
console.log(`subgroup matrices: ${matrix.length ? `${matrix.join(", ")} offered; pefc's kernels do not use them yet` : "not offered by this adapter/build"}`);
console.log(`subgroups: ${dev.caps.subgroups ? `used (size ${dev.caps.subgroupSize || "varies"})` : "not available"}; shader-f16: ${dev.caps.f16 ? "yes" : "no"}`);
const choice = await chooseMatmulVariant(dev);
console.log(`chosen matmul variant: ${choice.variant} (${choice.source})`);

console.log("\nmatmul, C = A·Bᵀ (B a torch Linear weight), median of 5 submits of 8 dispatches");
for (const n of [2048, 4096]) {
  for (const f16 of dev.caps.f16 ? [false, true] : [false]) {
    const p: MatmulProblem = { M: n, N: n, K: n, aLayout: "mk", bLayout: "nk", ...(f16 ? { bF16: true } : {}) };
    const row: string[] = [];
    for (const v of MATMUL_VARIANTS) row.push(`${v} ${await tflops(dev, p, v)}`);
    console.log(`  ${n}x${n}x${n} ${f16 ? "f16 weights" : "f32"}: ${row.join("   ")}`);
  }
}

await benchKernels(dev, choice.variant, false);

const layers = opt("layers", 28);
const B = opt("batch", 1);
const T = opt("seq", 512);
const steps = opt("steps", 3);
const config = { ...builtinConfig("chatglm2-6b")!, num_layers: layers };
const dir = mkdtempSync(join(tmpdir(), "pefc-gpu-bench-"));
try {
  console.log(`\nChatGLM2-6B-shaped AdaLoRA r=8 (init_r 12) on query_key_value, ${layers} layers, ${B} x ${T}, f16 base, AdamW`);
  const t0 = performance.now();
  await syntheticModel(dir, config);
  console.log(`  random weights written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const s = await session(
    {
      name: "chatglm2-6b adalora", config, batch: B, seq: T, steps, reference: false, precision: "f16",
      method: `adalora r=8 alpha=32 on query_key_value { init_r = 12; tinit = 1 steps; tfinal = 1 steps; delta_t = 1 steps; }`,
    },
    dir,
  );
  const t1 = performance.now();
  const b = await openGpuBackend(s, dev);
  const groups = epochGroups(s.train, s, 0, 0);
  await b.step(groups[0]!, 1e-4);
  console.log(`  upload, compile and first step: ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  const ms: number[] = [];
  for (let i = 1; i <= steps; i++) {
    const t = performance.now();
    await b.step(groups[i % groups.length]!, 1e-4);
    ms.push(performance.now() - t);
  }
  const m = median(ms);
  console.log(`  pefc: ${m.toFixed(1)} ms/step, ${((B * T * 1000) / m).toFixed(0)} tok/s, planned peak ${(b.program.memory.peakBytes / 2 ** 30).toFixed(2)} GiB, ${b.lastDispatches} dispatches`);
  console.log(`RESULT pefc_ms=${m.toFixed(1)} pefc_tok_s=${((B * T * 1000) / m).toFixed(0)} pefc_peak_gib=${(b.program.memory.peakBytes / 2 ** 30).toFixed(2)}`);
  b.dispose();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
dev.destroy();
