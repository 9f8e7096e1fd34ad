// Optimizer-step kernels on the GPU against the reference executor's kernels (exec/optim.ts, in
// float64 from the same f32 inputs): clip_grad_norm (a small tensor and one large enough for the
// split reduction), SGD with momentum/nesterov/weight decay over two steps (the first seeds the
// buffer), Adam and AdamW over 3 steps after clipping with a changing lr, AdaLoRA's regulariser and
// its gradient, and the fused one-dispatch update over packed arenas (gaps, per-tensor weight
// decay, clipping folded in) against the per-tensor reference updates.

import { beforeAll, describe, expect, it } from "vitest";
import { BASELINE_CAPS } from "../../src/codegen/wgsl/caps.js";
import type { KernelSpec } from "../../src/codegen/wgsl/kernel.js";
import { lowering, type Lowered, type TensorArg } from "../../src/codegen/wgsl/lower/index.js";
import { FUSED_NAMES, fusedGradNormKernels, fusedOptimizerKernel, type ParamSegment } from "../../src/codegen/wgsl/kernels/optim/index.js";
import type { Attrs, Op } from "../../src/ir/index.js";
import type { Device } from "../../src/runtime/device/index.js";
import { OPTIMIZER_KERNELS } from "../../src/runtime/reference/exec/optim.js";
import type { Tensor } from "../../src/runtime/reference/exec/tensor.js";
import { adamInit, adamStep, clipGradNorm, sgdStep } from "../../src/runtime/reference/optim.js";
import { expectClose, randomF32, testDevice, runKernels } from "./helpers.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});


function lower(op: string, shapes: number[][], outShapes: number[][], attrs: Attrs): Lowered {
  const arg = (shape: number[]): TensorArg => ({ dtype: "f32", shape });
  const o: Op = { op, module: "test", inputs: [], outputs: [], attrs };
  return lowering(op)!({ op: o, inputs: shapes.map(arg), outputs: outShapes.map(arg), attrs, caps: BASELINE_CAPS, matmul: "register" as never });
}

const ref = (op: string, ins: Tensor[], attrs: Attrs, outShapes: number[][]): Float64Array[] =>
  OPTIMIZER_KERNELS[op]!(ins, attrs, outShapes, { f64: true, seed: 0, step: 0 }) as Float64Array[];
const t64 = (x: Float32Array, shape: number[]): Tensor => ({ data: Float64Array.from(x), shape });
const scalar = (x: number): Float32Array => Float32Array.of(x);

// A small tensor and one past the one-workgroup reduction limit (65536), both odd.
const SIZES = [7, 70001];
const SHAPES = [[7], [7, 10001]];
const STATE_TOL = { atol: 1e-6, rtol: 2e-5 };

describe("clip_grad_norm", () => {
  for (const [what, scale, maxNorm] of [
    ["clips", 1, 1.5],
    ["leaves small gradients alone", 1e-3, 1.5],
  ] as const) {
    it(what, async () => {
      const grads = SIZES.map((n, i) => randomF32(n, 10 + i).map((x) => x * scale));
      const lowered = lower("clip_grad_norm", SHAPES, [...SHAPES, []], { max_norm: maxNorm });
      const got = await runKernels(dev, lowered, grads, [...SIZES, 1]);
      const want = ref("clip_grad_norm", grads.map((g, i) => t64(g, SHAPES[i]!)), { max_norm: maxNorm }, [...SHAPES, []]);
      expectClose("total norm", got[2]!, want[2]!, { atol: 0, rtol: 1e-5 });
      for (let i = 0; i < SIZES.length; i++) expectClose(`clipped grad ${i}`, got[i]!, want[i]!, { atol: 1e-7, rtol: 2e-5 });
      if (scale !== 1) expect(Array.from(got[0]!)).toEqual(Array.from(grads[0]!));
    });
  }
});

describe("sgd_update", () => {
  it("momentum 0.9, dampening 0.1, nesterov, weight decay, two steps", async () => {
    const attrs = { momentum: 0.9, dampening: 0.1, weight_decay: 0.01, nesterov: true };
    const shape = SHAPES[1]!;
    const n = SIZES[1]!;
    let p: Float32Array = randomF32(n, 21);
    let buf: Float32Array = new Float32Array(n).fill(NaN); // unread at step 1: torch seeds the buffer with d
    let rp = t64(p, shape);
    let rbuf = t64(buf, shape);
    const lowered = lower("sgd_update", [shape, shape, [], [], shape], [shape, shape], attrs);
    for (const [step, lr] of [[1, 0.1], [2, 0.05]] as const) {
      const g = randomF32(n, 30 + step);
      [p, buf] = (await runKernels(dev, lowered, [p, g, scalar(lr), scalar(step), buf], [n, n])) as [Float32Array, Float32Array];
      const [wp, wbuf] = ref("sgd_update", [rp, t64(g, shape), t64(scalar(lr), []), t64(scalar(step), []), rbuf], attrs, [shape, shape]);
      expectClose(`sgd p step ${step}`, p, wp!, STATE_TOL);
      expectClose(`sgd buf step ${step}`, buf, wbuf!, STATE_TOL);
      rp = { data: wp!, shape };
      rbuf = { data: wbuf!, shape };
    }
  });
});

describe.each([["adam_update"], ["adamw_update"]])("%s, 3 steps after clip_grad_norm", (op) => {
  it("matches the reference step by step", async () => {
    const attrs = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 };
    const clipAttrs = { max_norm: 2 };
    const clip = lower("clip_grad_norm", SHAPES, [...SHAPES, []], clipAttrs);
    const upd = SHAPES.map((s) => lower(op, [s, s, s, s, [], []], [s, s, s], attrs));
    const state = SIZES.map((n, i) => ({ p: randomF32(n, 40 + i), m: new Float32Array(n), v: new Float32Array(n) }));
    const rstate = state.map((s, i) => ({ p: t64(s.p, SHAPES[i]!), m: t64(s.m, SHAPES[i]!), v: t64(s.v, SHAPES[i]!) }));
    for (const [step, lr] of [[1, 1e-2], [2, 8e-3], [3, 5e-3]] as const) {
      const grads = SIZES.map((n, i) => randomF32(n, 100 * step + i).map((x) => 2 * x));
      const clipped = await runKernels(dev, clip, grads, [...SIZES, 1]);
      const rclipped = ref("clip_grad_norm", grads.map((g, i) => t64(g, SHAPES[i]!)), clipAttrs, [...SHAPES, []]);
      expectClose(`norm step ${step}`, clipped[2]!, rclipped[2]!, { atol: 0, rtol: 1e-5 });
      for (let i = 0; i < SIZES.length; i++) {
        const s = state[i]!;
        const shape = SHAPES[i]!;
        const [p, m, v] = await runKernels(dev, upd[i]!, [s.p, clipped[i]!, s.m, s.v, scalar(lr), scalar(step)], [SIZES[i]!, SIZES[i]!, SIZES[i]!]);
        const r = rstate[i]!;
        const [wp, wm, wv] = ref(op, [r.p, { data: rclipped[i]!, shape }, r.m, r.v, t64(scalar(lr), []), t64(scalar(step), [])], attrs, [shape, shape, shape]);
        expectClose(`${op} p[${i}] step ${step}`, p!, wp!, STATE_TOL);
        expectClose(`${op} m[${i}] step ${step}`, m!, wm!, STATE_TOL);
        expectClose(`${op} v[${i}] step ${step}`, v!, wv!, { atol: 1e-9, rtol: 2e-5 });
        Object.assign(s, { p: p!, m: m!, v: v! });
        Object.assign(r, { p: { data: wp!, shape }, m: { data: wm!, shape }, v: { data: wv!, shape } });
      }
    }
  });
});

describe("adalora_orth_reg", () => {
  // A lora_A [r=3, in=10] and a lora_B [out=9, r=3]: kinds 0 and 1.
  const shapes = [[3, 10], [9, 3]];
  const mats = shapes.map(([r, c], i) => randomF32(r! * c!, 60 + i).map((x) => 0.5 * x));
  const attrs = { kinds: [0, 1] };
  const refMats = mats.map((m, i) => t64(m, shapes[i]!));

  it("forward: mean of ‖C − I‖_F", async () => {
    const [got] = await runKernels(dev, lower("adalora_orth_reg", shapes, [[]], attrs), mats, [1]);
    const [want] = ref("adalora_orth_reg", refMats, attrs, [[]]);
    expectClose("orth reg", got!, want!, { atol: 1e-6, rtol: 1e-5 });
  });

  it("backward: dR·∂R/∂A and dR·∂R/∂B", async () => {
    const dr = scalar(0.7);
    const got = await runKernels(dev, lower("adalora_orth_reg_backward", [[], ...shapes], shapes, attrs), [dr, ...mats], shapes.map(([r, c]) => r! * c!));
    const want = ref("adalora_orth_reg_backward", [t64(dr, []), ...refMats], attrs, shapes);
    want.forEach((w, i) => expectClose(`orth grad ${i}`, got[i]!, w, { atol: 1e-6, rtol: 1e-5 }, shapes[i]![1]));
  });
});

describe("fused optimizer over packed arenas", () => {
  // Out of arena order, with gaps, and a tensor exempt from weight decay.
  const segments: ParamSegment[] = [
    { offset: 100, count: 70001 },
    { offset: 3, count: 7, weightDecay: 0 },
    { offset: 10, count: 33 },
  ];
  const arena = 100 + 70001 + 5;
  const slice = (a: Float32Array, s: ParamSegment): Float32Array => a.slice(s.offset, s.offset + s.count);

  async function runFused(kernels: KernelSpec[], bufs: Record<string, Float32Array>, read: string[]): Promise<Record<string, Float32Array>> {
    await dev.prepare(...kernels);
    const gpu: Record<string, GPUBuffer> = {};
    for (const [k, v] of Object.entries(bufs)) gpu[k] = dev.bufferFrom(v, k);
    try {
      const rec = dev.recorder("fused");
      for (const k of kernels) rec.dispatch(k, gpu);
      rec.submit();
      const out: Record<string, Float32Array> = {};
      for (const k of read) out[k] = await dev.readF32(gpu[k]!, bufs[k]!.length);
      return out;
    } finally {
      for (const b of Object.values(gpu)) b.destroy();
    }
  }

  it("AdamW with clipping: 3 steps in one dispatch each equal the per-tensor reference", async () => {
    const N = FUSED_NAMES;
    const hyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, clip: true, writeClipped: true };
    const maxNorm = 3;
    const upd = fusedOptimizerKernel(segments, "adamw", hyper, dev.caps);
    const norm = fusedGradNormKernels(segments, maxNorm, dev.caps);
    expect(upd.dispatch[0] * upd.dispatch[1]).toBe(Math.ceil((70001 + 7 + 33) / 256));
    // Gaps hold values the kernels must neither read into the norm nor change.
    let params: Float32Array = randomF32(arena, 70);
    let m: Float32Array = new Float32Array(arena);
    let v: Float32Array = new Float32Array(arena);
    const refP = segments.map((s) => Float64Array.from(slice(params, s)));
    const refS = refP.map((p) => adamInit(p));
    for (const [step, lr] of [[1, 1e-2], [2, 6e-3], [3, 3e-3]] as const) {
      const grads = randomF32(arena, 80 + step).map((x) => 4 * x);
      const out = await runFused(
        [...norm.kernels, upd],
        {
          [N.params]: params,
          [N.grads]: grads,
          [N.m]: m,
          [N.v]: v,
          [N.lr]: scalar(lr),
          [N.step]: scalar(step),
          [N.coef]: scalar(NaN),
          [N.norm]: scalar(NaN),
          [N.partials]: new Float32Array(norm.partialsBytes / 4).fill(NaN),
          [N.clipped]: new Float32Array(arena),
        },
        [N.params, N.m, N.v, N.norm, N.clipped],
      );
      const rg = segments.map((s) => Float64Array.from(slice(grads, s)));
      const total = clipGradNorm(rg, maxNorm);
      expectClose(`fused norm step ${step}`, out[N.norm]!, [total], { atol: 0, rtol: 1e-5 });
      // clipGradNorm clipped rg in place; the kernel kept its clipped gradients too.
      segments.forEach((s, i) => expectClose(`fused clipped seg ${i} step ${step}`, slice(out[N.clipped]!, s), rg[i]!, { atol: 1e-7, rtol: 1e-5 }));
      segments.forEach((s, i) => {
        adamStep(refP[i]!, rg[i]!, refS[i]!, { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: s.weightDecay ?? 0.05, decoupled: true });
        expectClose(`fused p seg ${i} step ${step}`, slice(out[N.params]!, s), refP[i]!, STATE_TOL);
        expectClose(`fused m seg ${i} step ${step}`, slice(out[N.m]!, s), refS[i]!.m, STATE_TOL);
        expectClose(`fused v seg ${i} step ${step}`, slice(out[N.v]!, s), refS[i]!.v, { atol: 1e-9, rtol: 2e-5 });
      });
      for (const gap of [0, 1, 2, 43, 99, arena - 1]) expect(out[N.params]![gap]).toBe(params[gap]);
      params = out[N.params]!;
      m = out[N.m]!;
      v = out[N.v]!;
    }
  });

  it("SGD with momentum, without clipping", async () => {
    const N = FUSED_NAMES;
    const upd = fusedOptimizerKernel(segments, "sgd", { momentum: 0.9, dampening: 0, weightDecay: 0.01 }, dev.caps);
    let params: Float32Array = randomF32(arena, 90);
    let buf: Float32Array = new Float32Array(arena);
    const refP = segments.map((s) => Float64Array.from(slice(params, s)));
    const refS = segments.map(() => ({}) as { momentumBuffer?: Float64Array });
    for (const [step, lr] of [[1, 0.1], [2, 0.05]] as const) {
      const grads = randomF32(arena, 95 + step);
      const out = await runFused([upd], { [N.params]: params, [N.grads]: grads, [N.momentum]: buf, [N.lr]: scalar(lr), [N.step]: scalar(step) }, [N.params, N.momentum]);
      segments.forEach((s, i) => {
        sgdStep(refP[i]!, Float64Array.from(slice(grads, s)), refS[i]!, { lr, momentum: 0.9, dampening: 0, weightDecay: s.weightDecay ?? 0.01 });
        expectClose(`fused sgd p seg ${i} step ${step}`, slice(out[N.params]!, s), refP[i]!, STATE_TOL);
        expectClose(`fused sgd buf seg ${i} step ${step}`, slice(out[N.momentum]!, s), refS[i]!.momentumBuffer!, STATE_TOL);
      });
      params = out[N.params]!;
      buf = out[N.momentum]!;
    }
  });

  it("merges adjacent segments with equal decay into one run (no table)", () => {
    const k = fusedOptimizerKernel([{ offset: 0, count: 10 }, { offset: 10, count: 5 }], "adam", {});
    expect(k.wgsl).not.toContain("run_of");
    expect(() => fusedOptimizerKernel([{ offset: 0, count: 10 }, { offset: 5, count: 5 }], "adam", {})).toThrow(/overlaps/);
  });
});
