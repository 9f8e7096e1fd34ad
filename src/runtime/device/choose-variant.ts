// Which matmul variant this device runs fastest. CPU adapters and GPUs disagree by 2.5x in
// opposite directions (llvmpipe: register blocks; GPUs: workgroup tiles), and driver versions
// move it, so the choice is measured on a short benchmark at first use and cached per adapter
// and driver; the result is also memoised for the process.

import { MATMUL_VARIANTS, matmulKernel, type MatmulProblem, type MatmulVariant } from "../../codegen/wgsl/matmul/index.js";
import type { Device } from "./device.js";
import { defaultKernelCacheFile, readChoice, writeChoice, type CachedChoice } from "./kernel-cache.js";
import { median } from "./timing.js";

export interface ChooseOptions {
  /** Cache file; default $XDG_CACHE_HOME/pefc/kernels.json (or ~/.cache/...). */
  cacheFile?: string;
  /** Measure even if a cached choice exists. */
  remeasure?: boolean;
  /** The problem to measure; defaults to a 128x512x512 torch-layout linear. */
  problem?: MatmulProblem;
  candidates?: readonly MatmulVariant[];
  /** Consult the in-process memo (default true). */
  memo?: boolean;
}

export interface VariantChoice extends CachedChoice {
  variant: MatmulVariant;
  source: "cache" | "measured" | "memo" | "cpu";
}

const FAMILY = "matmul";
const memo = new Map<string, VariantChoice>();

export async function chooseMatmulVariant(device: Device, opts: ChooseOptions = {}): Promise<VariantChoice> {
  const key = device.info.key;
  const candidates = opts.candidates ?? MATMUL_VARIANTS;
  if (!opts.remeasure) {
    const m = opts.memo === false ? undefined : memo.get(key);
    if (m && candidates.includes(m.variant)) return { ...m, source: "memo" };
    const file = opts.cacheFile ?? defaultKernelCacheFile();
    const c = await readChoice(file, key, FAMILY);
    if (c && (candidates as readonly string[]).includes(c.variant)) {
      const choice: VariantChoice = { ...c, variant: c.variant as MatmulVariant, source: "cache" };
      memo.set(key, choice);
      return choice;
    }
  }
  // CPU adapters take register blocks without measuring: llvmpipe ran them 8.6x faster than
  // workgroup tiles (20.5 against 2.4 GFLOP/s at 128x512x512), and measuring cost 2.4 s of a cold
  // start, nearly all of it compiling the two kernels. `remeasure` still measures.
  if (device.caps.isCpu && candidates.includes("register") && !opts.remeasure) {
    const choice: VariantChoice = { variant: "register", gflops: {}, shape: "", at: new Date().toISOString(), source: "cpu" };
    memo.set(key, choice);
    return choice;
  }
  const problem: MatmulProblem = opts.problem ?? { M: 128, N: 512, K: 512, aLayout: "mk", bLayout: "nk" };
  const gflops: Record<string, number> = {};
  for (const v of candidates) gflops[v] = await measureMatmul(device, problem, v, 3, 2);
  const best = candidates.reduce((a, b) => (gflops[b]! > gflops[a]! ? b : a));
  const choice: VariantChoice = {
    variant: best,
    gflops,
    shape: `${problem.M}x${problem.N}x${problem.K}`,
    at: new Date().toISOString(),
    source: "measured",
  };
  memo.set(key, choice);
  const { source: _source, ...stored } = choice;
  await writeChoice(opts.cacheFile ?? defaultKernelCacheFile(), key, FAMILY, stored);
  return choice;
}

/** Median GFLOP/s of one variant on random data: `reps` dispatches per submit, warm. */
export async function measureMatmul(device: Device, p: MatmulProblem, v: MatmulVariant, runs = 3, reps = 4): Promise<number> {
  // Default operand names, so buffers can be sized by name.
  const spec = matmulKernel({ ...p, names: undefined, epilogue: undefined }, v, device.caps);
  await device.prepare(spec);
  const bufs: Record<string, GPUBuffer> = {};
  const sizes: Record<string, number> = {
    a: p.M * p.K,
    b: p.N * p.K * (p.bF16 ? 0.5 : 1),
    c: p.M * p.N,
    bias: p.N,
  };
  for (const b of spec.bindings) {
    const n = Math.ceil(sizes[b.name] ?? 0);
    const data = new Float32Array(Math.max(1, n));
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 0.5;
    bufs[b.name] = device.bufferFrom(data, b.name);
  }
  try {
    const record = (rec: { dispatch: (s: typeof spec, b: Record<string, GPUBuffer>) => void }) => {
      for (let i = 0; i < reps; i++) rec.dispatch(spec, bufs);
    };
    await device.time(record, 1);
    const { ms } = await device.time(record, runs);
    return (spec.flops * reps) / (median(ms) * 1e6);
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}
