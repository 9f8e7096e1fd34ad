import { describe, expect, it } from 'vitest';
import { accumulateGradients, adamInit, adamStep, clipGradNorm, sgdStep, type SgdState } from '../../src/runtime/reference/index.js';
import { expectClose } from './helpers.js';

describe('sgd (torch semantics)', () => {
  it('plain steps: p −= lr·g', () => {
    const p = Float64Array.of(1);
    const state: SgdState<Float64Array> = {};
    sgdStep(p, Float64Array.of(0.5), state, { lr: 0.1 });
    sgdStep(p, Float64Array.of(0.5), state, { lr: 0.1 });
    expectClose(p, [0.9]);
    expect(state.momentumBuffer).toBeUndefined();
  });

  it('momentum with weight decay: buf = g′ first, then 0.9·buf + g′', () => {
    // step 1: g′ = 0.5 + 0.1·1 = 0.6, buf = 0.6, p = 0.94
    // step 2: g′ = 0.5 + 0.1·0.94 = 0.594, buf = 0.54 + 0.594 = 1.134, p = 0.94 − 0.1134 = 0.8266
    const p = Float64Array.of(1);
    const state: SgdState<Float64Array> = {};
    const o = { lr: 0.1, momentum: 0.9, weightDecay: 0.1 };
    sgdStep(p, Float64Array.of(0.5), state, o);
    expectClose(p, [0.94]);
    sgdStep(p, Float64Array.of(0.5), state, o);
    expectClose(p, [0.8266]);
    expectClose(state.momentumBuffer!, [1.134]);
  });

  it('nesterov: p −= lr·(g′ + momentum·buf)', () => {
    // step 1: g′ = 0.6, buf = 0.6, update 0.6 + 0.54 = 1.14 → p = 0.886
    // step 2: g′ = 0.5886, buf = 0.54 + 0.5886 = 1.1286, update 0.5886 + 1.01574 → p = 0.725566
    const p = Float64Array.of(1);
    const state: SgdState<Float64Array> = {};
    const o = { lr: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true };
    sgdStep(p, Float64Array.of(0.5), state, o);
    sgdStep(p, Float64Array.of(0.5), state, o);
    expectClose(p, [0.725566]);
  });
});

describe('adam / adamw (torch semantics)', () => {
  it('adam, two steps with changing gradients', () => {
    // lr 0.1, β = (0.9, 0.999), eps 1e-8, p = 1, g = 0.5 then −1.
    // step 1: m = 0.05, v = 0.00025, step_size = 0.1/0.1 = 1, denom = 0.5 + 1e-8
    // step 2: m = 0.045 − 0.1 = −0.055, v = 0.00024975 + 0.001 = 0.00124975,
    //         step_size = 0.1/0.19, denom = sqrt(0.00124975/0.001999) + 1e-8
    const p = Float64Array.of(1);
    const st = adamInit(p);
    const o = { lr: 0.1, decoupled: false };
    adamStep(p, Float64Array.of(0.5), st, o);
    const p1 = 1 - 0.05 / (0.5 + 1e-8);
    expectClose(p, [p1]);
    adamStep(p, Float64Array.of(-1), st, o);
    expectClose(st.m, [-0.055]);
    expectClose(st.v, [0.00124975]);
    expectClose(p, [p1 + ((0.1 / 0.19) * 0.055) / (Math.sqrt(0.00124975 / 0.001999) + 1e-8)]);
    expect(st.step).toBe(2);
  });

  it('adam with L2 weight decay adds wd·p to the gradient', () => {
    // wd 0.5, g = 0.5: step 1 grad = 1 → m = 0.1, v = 0.001, p = 1 − 0.1/(1 + 1e-8)
    // step 2 grad = 0.5 + 0.5·p1 → m = 0.09 + 0.1·grad, v = 0.000999 + 0.001·grad²
    const p = Float64Array.of(1);
    const st = adamInit(p);
    const o = { lr: 0.1, weightDecay: 0.5, decoupled: false };
    adamStep(p, Float64Array.of(0.5), st, o);
    const p1 = 1 - 0.1 / (1 + 1e-8);
    expectClose(p, [p1]);
    adamStep(p, Float64Array.of(0.5), st, o);
    const g2 = 0.5 + 0.5 * p1;
    const m2 = 0.09 + 0.1 * g2;
    const v2 = 0.000999 + 0.001 * g2 * g2;
    expectClose(p, [p1 - ((0.1 / 0.19) * m2) / (Math.sqrt(v2 / 0.001999) + 1e-8)]);
  });

  it('adamw decays the weight before the update (constant gradient, so m̂ = g and v̂ = g²)', () => {
    // wd 0.5, lr 0.1: p ← p·0.95, then p −= 0.1 · 0.5/(0.5 + 1e-8)
    const p = Float64Array.of(1);
    const st = adamInit(p);
    const o = { lr: 0.1, weightDecay: 0.5, decoupled: true };
    const update = 0.05 / (0.5 + 1e-8);
    adamStep(p, Float64Array.of(0.5), st, o);
    expectClose(p, [0.95 - update]);
    adamStep(p, Float64Array.of(0.5), st, o);
    expectClose(p, [(0.95 - update) * 0.95 - update]);
    expectClose(st.v, [0.00049975]);
  });

  it('keeps float32 state for float32 parameters', () => {
    const p = Float32Array.of(1, 2);
    const st = adamInit(p);
    adamStep(p, Float32Array.of(0.1, 0.2), st, { lr: 0.01, decoupled: true });
    expect(st.m).toBeInstanceOf(Float32Array);
  });
});

describe('clip_grad_norm_', () => {
  it('scales every gradient by max_norm/(total + 1e-6) when the norm is larger', () => {
    const a = Float64Array.of(3, 4);
    const b = Float64Array.of(12);
    const total = clipGradNorm([a, b], 1);
    expect(total).toBe(13);
    const c = 1 / (13 + 1e-6);
    expectClose(a, [3 * c, 4 * c]);
    expectClose(b, [12 * c]);
  });

  it('leaves gradients alone when the norm is below max_norm, and supports the inf norm', () => {
    const a = Float64Array.of(3, -4);
    expect(clipGradNorm([a], 100)).toBe(5);
    expectClose(a, [3, -4]);
    const b = Float64Array.of(3, -4);
    expect(clipGradNorm([b], 2, 'inf')).toBe(4);
    expectClose(b, [(3 * 2) / (4 + 1e-6), (-4 * 2) / (4 + 1e-6)]);
  });
});

describe('gradient accumulation', () => {
  it('sums micro-batch gradients each divided by the accumulation steps', () => {
    const out = accumulateGradients([
      [Float64Array.of(1, 2), Float64Array.of(10)],
      [Float64Array.of(3, 4), Float64Array.of(-2)],
    ]);
    expectClose(out[0]!, [2, 3]);
    expectClose(out[1]!, [4]);
  });
});
