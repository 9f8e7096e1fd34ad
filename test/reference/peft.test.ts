import { describe, expect, it } from 'vitest';
import {
  adaloraBackward,
  adaloraForward,
  adaloraScale,
  bottleneckBackward,
  bottleneckForward,
  dropoutForward,
  gateBackward,
  gateForward,
  ia3InputBackward,
  ia3InputForward,
  ia3OutputBackward,
  ia3OutputForward,
  linearForward,
  loraBackward,
  loraForward,
  prefixMlpBackward,
  prefixMlpForward,
  ptuningMlpBackward,
  ptuningMlpForward,
  type AdapterAct,
} from '../../src/runtime/reference/index.js';
import { checkGrad, dot, expectClose, rand } from './helpers.js';

/** out[o, i] = Σ_k a[o, k] b[k, i] for a [O,K], b [K,I]. */
function matmul(a: Float64Array, b: Float64Array, O: number, K: number, I: number): Float64Array {
  const out = new Float64Array(O * I);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let k = 0; k < K; k++) out[o * I + i] = out[o * I + i]! + a[o * K + k]! * b[k * I + i]!;
  return out;
}

describe('lora', () => {
  const s = { M: 3, inF: 5, outF: 7, r: 2 };

  it('equals the merged delta x (s·B·A)ᵀ without dropout', () => {
    const x = rand(15);
    const A = rand(10);
    const B = rand(14);
    const merged = matmul(B, A, 7, 2, 5).map((v) => v * 0.75);
    expectClose(loraForward(x, A, B, 0.75, s).delta, linearForward(x, merged, undefined, { M: 3, K: 5, N: 7 }));
  });

  it('applies dropout to the branch input only', () => {
    const x = rand(15);
    const A = rand(10);
    const B = rand(14);
    const drop = { p: 0.5, seed: 4, stream: 1 };
    const expected = loraForward(dropoutForward(x, drop), A, B, 2, s).delta;
    expectClose(loraForward(x, A, B, 2, s, drop).delta, expected);
  });

  it('backward equals central differences (with dropout)', () => {
    const x = rand(15);
    const A = rand(10);
    const B = rand(14);
    const r = rand(21);
    const drop = { p: 0.3, seed: 8, stream: 2 };
    const f = loraForward(x, A, B, 1.5, s, drop);
    const g = loraBackward(x, A, B, f.u, r, 1.5, s, { dx: true, dA: true, dB: true }, drop);
    const loss = (): number => dot(loraForward(x, A, B, 1.5, s, drop).delta, r);
    checkGrad('dx', x, g.dx, loss);
    checkGrad('dA', A, g.dA, loss);
    checkGrad('dB', B, g.dB, loss);
  });
});

describe('adalora delta', () => {
  const s = { M: 3, inF: 5, outF: 7, r: 3 };

  it('equals x (B diag(E) A)ᵀ · alpha/(ranknum + 1e-5)', () => {
    const x = rand(15);
    const A = rand(15);
    const E = Float64Array.of(0.5, 0, -2);
    const B = rand(21);
    const scale = adaloraScale(8, 12);
    expect(scale).toBeCloseTo(8 / 12.00001, 15);
    const EA = A.map((v, i) => v * E[Math.floor(i / 5)]!);
    const merged = matmul(B, EA, 7, 3, 5).map((v) => v * scale);
    expectClose(adaloraForward(x, A, E, B, scale, s).delta, linearForward(x, merged, undefined, { M: 3, K: 5, N: 7 }));
  });

  it('backward equals central differences (with dropout)', () => {
    const x = rand(15);
    const A = rand(15);
    const E = rand(3);
    const B = rand(21);
    const r = rand(21);
    const drop = { p: 0.25, seed: 1, stream: 5 };
    const scale = adaloraScale(8, 3);
    const f = adaloraForward(x, A, E, B, scale, s, drop);
    const g = adaloraBackward(x, A, E, B, f.u, r, scale, s, { dx: true, dA: true, dB: true, dE: true }, drop);
    const loss = (): number => dot(adaloraForward(x, A, E, B, scale, s, drop).delta, r);
    checkGrad('dx', x, g.dx, loss);
    checkGrad('dA', A, g.dA, loss);
    checkGrad('dB', B, g.dB, loss);
    checkGrad('dE', E, g.dE, loss);
  });
});

describe('ia3', () => {
  it('scales outputs per column and inputs before the projection (hand example)', () => {
    const y = Float64Array.of(1, 2, 3, 4); // [2,2]
    expectClose(ia3OutputForward(y, Float64Array.of(10, -1), 2, 2), [10, -2, 30, -4]);
    // (x ⊙ l) Wᵀ with x = [1, 2], l = [3, 0.5], W = I
    const r = ia3InputForward(Float64Array.of(1, 2), Float64Array.of(3, 0.5), Float64Array.of(1, 0, 0, 1), undefined, { M: 1, K: 2, N: 2 });
    expectClose(r.y, [3, 1]);
  });

  it('output and input forms: backward equals central differences', () => {
    const y = rand(21);
    const l = rand(7);
    const r = rand(21);
    const go = ia3OutputBackward(y, l, r, 3, 7, { dx: true, dl: true });
    const lossO = (): number => dot(ia3OutputForward(y, l, 3, 7), r);
    checkGrad('output dy', y, go.dx, lossO);
    checkGrad('output dl', l, go.dl, lossO);

    const s = { M: 3, K: 5, N: 7 };
    const x = rand(15);
    const li = rand(5);
    const w = rand(35);
    const b = rand(7);
    const gi = ia3InputBackward(x, li, w, r, s, { dx: true, dl: true });
    const lossI = (): number => dot(ia3InputForward(x, li, w, b, s).y, r);
    checkGrad('input dx', x, gi.dx, lossI);
    checkGrad('input dl', li, gi.dl, lossI);
  });
});

describe('bottleneck adapter', () => {
  it('computes scaling · up(relu(down(u))) on a hand example', () => {
    // d = 2, m = 1: down = [1, −1] + 0, up = [2, 3]ᵀ + [1, 0]
    const p = { wd: Float64Array.of(1, -1), bd: Float64Array.of(0), wu: Float64Array.of(2, 3), bu: Float64Array.of(1, 0) };
    const s = { M: 2, d: 2, m: 1, act: 'relu' as const, scaling: 0.5 };
    // row 0: down = 3 − 1 = 2 → relu 2 → up (5, 6) → (2.5, 3); row 1: down = −1 → 0 → up (1, 0)
    expectClose(bottleneckForward(Float64Array.of(3, 1, 0, 1), p, s).out, [2.5, 3, 0.5, 0]);
  });

  for (const act of ['relu', 'silu', 'gelu', 'gelu_tanh'] as AdapterAct[]) {
    it(`${act}: backward equals central differences (M=3, d=5, m=2)`, () => {
      const s = { M: 3, d: 5, m: 2, act, scaling: 4 };
      const u = rand(15);
      const p = { wd: rand(10), bd: rand(2), wu: rand(10), bu: rand(5) };
      const r = rand(15);
      const f = bottleneckForward(u, p, s);
      const g = bottleneckBackward(u, p, f.z, f.h, r, s, { du: true, params: true });
      const loss = (): number => dot(bottleneckForward(u, p, s).out, r);
      checkGrad('du', u, g.du, loss);
      checkGrad('dwd', p.wd, g.dwd, loss);
      checkGrad('dbd', p.bd, g.dbd, loss);
      checkGrad('dwu', p.wu, g.dwu, loss);
      checkGrad('dbu', p.bu, g.dbu, loss);
    });
  }
});

describe('prompt encoders', () => {
  it('prefix MLP: forward by hand and backward by central differences', () => {
    // P = 1, d = 1, h = 1, O = 2: tanh(2·0.5 + 0) = tanh(1), then (3, −1)·tanh(1) + (0, 1)
    const one = prefixMlpForward(Float64Array.of(0.5), { w1: Float64Array.of(2), b1: Float64Array.of(0), w2: Float64Array.of(3, -1), b2: Float64Array.of(0, 1) }, { P: 1, d: 1, h: 1, O: 2 });
    expectClose(one.out, [3 * Math.tanh(1), 1 - Math.tanh(1)]);

    const s = { P: 3, d: 4, h: 5, O: 6 };
    const p = { emb: rand(12), w1: rand(20), b1: rand(5), w2: rand(30), b2: rand(6) };
    const r = rand(18);
    const f = prefixMlpForward(p.emb, p, s);
    const g = prefixMlpBackward(p, f.t, r, s);
    const loss = (): number => dot(prefixMlpForward(p.emb, p, s).out, r);
    checkGrad('demb', p.emb, g.demb, loss);
    checkGrad('dw1', p.w1, g.dw1, loss);
    checkGrad('db1', p.b1, g.db1, loss);
    checkGrad('dw2', p.w2, g.dw2, loss);
    checkGrad('db2', p.b2, g.db2, loss);
  });

  it('p-tuning MLP: backward equals central differences (T=3, D=4, h=5)', () => {
    const s = { T: 3, D: 4, h: 5 };
    const p = { emb: rand(12), w1: rand(20), b1: rand(5), w2: rand(25), b2: rand(5), w3: rand(20), b3: rand(4) };
    const r = rand(12);
    const f = ptuningMlpForward(p.emb, p, s);
    const g = ptuningMlpBackward(p, f.a1, f.a2, r, s);
    const loss = (): number => dot(ptuningMlpForward(p.emb, p, s).out, r);
    checkGrad('demb', p.emb, g.demb, loss);
    for (const k of ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const) checkGrad(`d${k}`, p[k], g[`d${k}`], loss);
  });
});

describe('gate', () => {
  it('is 0.5 with zero weights and the sequence mean of sigmoids otherwise', () => {
    const u = rand(2 * 3 * 4);
    expectClose(gateForward(u, new Float64Array(4), Float64Array.of(0), 2, 3, 4).g, [0.5, 0.5]);
    // d = 1, w = 1, bias = 0, u = (0, ln 3): mean(1/2, 3/4)
    expectClose(gateForward(Float64Array.of(0, Math.log(3)), Float64Array.of(1), Float64Array.of(0), 1, 2, 1).g, [0.625]);
  });

  it('backward equals central differences (B=2, S=3, d=5)', () => {
    const u = rand(30, -2, 2);
    const w = rand(5);
    const bias = rand(1);
    const r = rand(2);
    const f = gateForward(u, w, bias, 2, 3, 5);
    const g = gateBackward(u, w, f.sig, r, 2, 3, 5);
    const loss = (): number => dot(gateForward(u, w, bias, 2, 3, 5).g, r);
    checkGrad('du', u, g.du, loss);
    checkGrad('dw', w, g.dw, loss);
    checkGrad('dbias', bias, g.dbias, loss);
  });
});
