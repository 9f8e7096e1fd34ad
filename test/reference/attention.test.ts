import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward, type AttentionSpec } from '../../src/runtime/reference/index.js';
import { checkGrad, dot, expectClose, rand } from './helpers.js';

describe('attention forward', () => {
  it('matches a hand-computed causal 1-head case', () => {
    // hd = 1 so the scale is 1. Query 0 sees only key 0; query 1 sees keys 0 and 1 with
    // scores q1·k = (0, ln 2), i.e. weights (1/3, 2/3).
    const s: AttentionSpec = { B: 1, T: 2, S: 2, Hq: 1, Hkv: 1, hd: 1, causal: true };
    const q = Float64Array.of(7, 1);
    const k = Float64Array.of(0, Math.LN2);
    const v = Float64Array.of(3, 6);
    const { out, lse } = attentionForward({ q, k, v }, s);
    expectClose(out, [3, 5]);
    expectClose(lse, [0, Math.log(3)]);
    // Without the mask query 0 weighs exp(0) and exp(7 ln 2) = 128.
    const free = attentionForward({ q, k, v }, { ...s, causal: false }).out;
    expectClose(free, [(3 + 128 * 6) / 129, 5]);
  });

  it('maps query head h to kv head floor(h·Hkv/Hq), like repeating each kv head', () => {
    const s: AttentionSpec = { B: 2, T: 3, S: 3, Hq: 4, Hkv: 2, hd: 6, causal: true };
    const q = rand(2 * 3 * 4 * 6);
    const k = rand(2 * 3 * 2 * 6);
    const v = rand(2 * 3 * 2 * 6);
    const repeat = (x: Float64Array): Float64Array => {
      const out = new Float64Array(2 * 3 * 4 * 6);
      for (let bt = 0; bt < 6; bt++)
        for (let h = 0; h < 4; h++) out.set(x.subarray((bt * 2 + (h >> 1)) * 6, (bt * 2 + (h >> 1)) * 6 + 6), (bt * 4 + h) * 6);
      return out;
    };
    const gqa = attentionForward({ q, k, v }, s).out;
    const mha = attentionForward({ q, k: repeat(k), v: repeat(v) }, { ...s, Hkv: 4 }).out;
    expectClose(gqa, mha);
  });

  it('treats prefix keys as always-visible keys placed before the sequence', () => {
    // Non-causal, no padding: a prefix is the same as concatenating it in front of k and v.
    const s: AttentionSpec = { B: 1, T: 2, S: 2, Hq: 2, Hkv: 1, hd: 3, P: 3, causal: false };
    const q = rand(12);
    const k = rand(6);
    const v = rand(6);
    const pk = rand(9);
    const pv = rand(9);
    const cat = (a: Float64Array, b: Float64Array): Float64Array => Float64Array.from([...a, ...b]);
    const withPrefix = attentionForward({ q, k, v, prefixK: pk, prefixV: pv }, s).out;
    const concatenated = attentionForward({ q, k: cat(pk, k), v: cat(pv, v) }, { ...s, S: 5, P: 0 }).out;
    expectClose(withPrefix, concatenated);
  });

  it('aligns the causal mask to the last T positions when S > T, and honours padding', () => {
    // hd = 1, q = 0: every visible key weighs the same, so out = mean of visible values.
    const s: AttentionSpec = { B: 1, T: 2, S: 4, Hq: 1, Hkv: 1, hd: 1, causal: true };
    const q = Float64Array.of(0, 0);
    const k = rand(4);
    const v = Float64Array.of(1, 2, 4, 8);
    expectClose(attentionForward({ q, k, v }, s).out, [(1 + 2 + 4) / 3, 15 / 4]);
    const keyMask = Uint8Array.of(0, 1, 1, 1);
    expectClose(attentionForward({ q, k, v, keyMask }, s).out, [3, 14 / 3]);
  });

  it('gives 0 and no gradient for a row with no visible key', () => {
    const s: AttentionSpec = { B: 1, T: 1, S: 2, Hq: 1, Hkv: 1, hd: 2, causal: false };
    const x = { q: rand(2), k: rand(4), v: rand(4), keyMask: Uint8Array.of(0, 0) };
    const { out, lse } = attentionForward(x, s);
    expectClose(out, [0, 0]);
    expect(lse[0]).toBe(-Infinity);
    const g = attentionBackward(x, out, lse, Float64Array.of(1, 1), s);
    expectClose(g.dq, [0, 0]);
  });
});

describe('attention backward', () => {
  it('equals central differences with GQA, a prefix, padding and the causal mask (hd=6, Hq=4, Hkv=2, P=3)', () => {
    const s: AttentionSpec = { B: 2, T: 3, S: 3, Hq: 4, Hkv: 2, hd: 6, P: 3, causal: true };
    const x = {
      q: rand(2 * 3 * 4 * 6),
      k: rand(2 * 3 * 2 * 6),
      v: rand(2 * 3 * 2 * 6),
      prefixK: rand(2 * 3 * 2 * 6),
      prefixV: rand(2 * 3 * 2 * 6),
      keyMask: Uint8Array.of(1, 1, 1, 0, 1, 1),
    };
    const r = rand(2 * 3 * 4 * 6);
    const { out, lse } = attentionForward(x, s);
    const g = attentionBackward(x, out, lse, r, s);
    const loss = (): number => dot(attentionForward(x, s).out, r);
    checkGrad('dq', x.q, g.dq, loss);
    checkGrad('dk', x.k, g.dk, loss);
    checkGrad('dv', x.v, g.dv, loss);
    checkGrad('dprefixK', x.prefixK, g.dprefixK, loss);
    checkGrad('dprefixV', x.prefixV, g.dprefixV, loss);
  });

  it('equals central differences without a prefix and with a custom scale (T=2, S=5)', () => {
    const s: AttentionSpec = { B: 1, T: 2, S: 5, Hq: 3, Hkv: 1, hd: 5, causal: true, scale: 0.3 };
    const x = { q: rand(30), k: rand(25), v: rand(25) };
    const r = rand(30);
    const { out, lse } = attentionForward(x, s);
    const g = attentionBackward(x, out, lse, r, s);
    expect(g.dprefixK).toBeUndefined();
    const loss = (): number => dot(attentionForward(x, s).out, r);
    checkGrad('dq', x.q, g.dq, loss);
    checkGrad('dk', x.k, g.dk, loss);
    checkGrad('dv', x.v, g.dv, loss);
  });
});
