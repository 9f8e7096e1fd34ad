import { describe, expect, it } from 'vitest';
import {
  causalLmLossBackward,
  causalLmLossForward,
  causalLmLossSumBackward,
  causalLmLossSumCount,
} from '../../src/runtime/reference/index.js';
import { checkGrad, expectClose, rand } from './helpers.js';

describe('causal-LM loss', () => {
  it('shifts labels, ignores −100 and averages over counted tokens (hand example)', () => {
    // B=1, T=3, V=2. Position 0 predicts label[1] = 1, position 1 predicts label[2] = −100
    // (ignored), position 2 has nothing to predict. Row 0 logits (0, ln 3): p(1) = 3/4.
    const logits = Float64Array.of(0, Math.log(3), 5, -5, 1, 2);
    const labels = Int32Array.of(0, 1, -100);
    const s = { B: 1, T: 3, V: 2 };
    const r = causalLmLossForward(logits, labels, s);
    expect(r.count).toBe(1);
    expect(r.loss).toBeCloseTo(-Math.log(0.75), 14);
    // dlogits row 0 = softmax − onehot = (1/4, 3/4 − 1); other rows 0
    expectClose(causalLmLossBackward(logits, labels, s), [0.25, -0.25, 0, 0, 0, 0]);
  });

  it('averages two batches with different counts by total counted tokens', () => {
    // Uniform logits over V = 4: every counted token costs ln 4; three counted tokens.
    const s = { B: 2, T: 3, V: 4 };
    const logits = new Float64Array(2 * 3 * 4);
    const labels = Int32Array.of(9, 1, 2, 9, -100, 3);
    const { loss, sum, count } = causalLmLossForward(logits, labels, s);
    expect(count).toBe(3);
    expect(sum).toBeCloseTo(3 * Math.log(4), 13);
    expect(loss).toBeCloseTo(Math.log(4), 14);
  });

  it('is stable for large logits (max subtraction)', () => {
    const logits = Float64Array.of(1000, 1000, 0, 0);
    const { loss } = causalLmLossForward(logits, Int32Array.of(0, 1), { B: 1, T: 2, V: 2 });
    expect(loss).toBeCloseTo(Math.LN2, 14);
  });

  it('is NaN when no token counts, as torch', () => {
    expect(causalLmLossForward(rand(4), Int32Array.of(0, -100), { B: 1, T: 2, V: 2 }).loss).toBeNaN();
  });

  it('mean and sum backward equal central differences (B=2, T=4, V=7)', () => {
    const s = { B: 2, T: 4, V: 7 };
    const logits = rand(2 * 4 * 7, -3, 3);
    const labels = Int32Array.of(0, 6, -100, 2, 5, 3, 3, -100);
    checkGrad('mean', logits, causalLmLossBackward(logits, labels, s, 1.5), () => 1.5 * causalLmLossForward(logits, labels, s).loss);
    checkGrad('sum', logits, causalLmLossSumBackward(logits, labels, s, 0.2), () => 0.2 * causalLmLossSumCount(logits, labels, s).sum);
  });
});
