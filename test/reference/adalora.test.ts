import { describe, expect, it } from 'vitest';
import {
  budgetSchedule,
  orthRegBackward,
  orthRegForward,
  RankAllocator,
  type AdaloraMatrix,
  type OrthMatrix,
} from '../../src/runtime/reference/index.js';
import { adaloraScheduleText } from '../../src/runtime/train/adalora.js';
import { checkGrad, expectClose, rand } from './helpers.js';

describe('orthogonal regulariser', () => {
  it('is the mean of unsquared Frobenius norms (hand example)', () => {
    // A = [[2, 0]]: A Aᵀ − I = 3; B = [[1], [1]]: Bᵀ B − I = 1; R = (3 + 1) / 2
    const mats: OrthMatrix[] = [
      { w: Float64Array.of(2, 0), rows: 1, cols: 2, kind: 'A' },
      { w: Float64Array.of(1, 1), rows: 2, cols: 1, kind: 'B' },
    ];
    expect(orthRegForward(mats)).toBeCloseTo(2, 15);
    // An orthonormal A contributes 0; with no matrices R = 0.
    expect(orthRegForward([{ w: Float64Array.of(0, 1, 1, 0), rows: 2, cols: 2, kind: 'A' }])).toBe(0);
    expect(orthRegForward([])).toBe(0);
  });

  it('backward equals central differences (A [3,5], B [7,3], A [2,4])', () => {
    const mats: OrthMatrix[] = [
      { w: rand(15), rows: 3, cols: 5, kind: 'A' },
      { w: rand(21), rows: 7, cols: 3, kind: 'B' },
      { w: rand(8), rows: 2, cols: 4, kind: 'A' },
    ];
    const grads = orthRegBackward(mats, 0.5);
    mats.forEach((m, i) => checkGrad(`matrix ${i}`, m.w as Float64Array, grads[i], () => 0.5 * orthRegForward(mats)));
  });
});

describe('budget schedule', () => {
  const c = { initBgt: 336, targetBgt: 224, tinit: 0, tfinal: 0, totalStep: 1000, deltaT: 1 };

  it('follows the cubic formula (chatglm2 qkv example of peft-methods.md §2.7)', () => {
    const at = (t: number): number => budgetSchedule(t, c).budget;
    expect(at(0)).toBe(336);
    expect(at(1)).toBe(335); // 112·0.999³ + 224 = 335.66
    expect(at(100)).toBe(305); // 112·0.729 + 224 = 305.65
    expect(at(500)).toBe(238); // 112·0.125 + 224
    expect(at(900)).toBe(224); // 112·0.001 + 224 = 224.11
    expect(at(1000)).toBe(224);
  });

  it('warm-up, deltaT and the final phase decide when to mask', () => {
    const d = { ...c, tinit: 10, tfinal: 20, deltaT: 5 };
    expect(budgetSchedule(10, d)).toEqual({ budget: 336, mask: false });
    // t = 15: m = 1 − 5/970, b = int(112·m³ + 224)
    const m = 1 - 5 / 970;
    expect(budgetSchedule(15, d)).toEqual({ budget: Math.floor(112 * m * m * m + 224), mask: true });
    expect(budgetSchedule(16, d).mask).toBe(false);
    expect(budgetSchedule(980, d)).toEqual({ budget: 224, mask: true }); // m = 0 at total − tfinal
    expect(budgetSchedule(981, d)).toEqual({ budget: 224, mask: true });
  });
});

/** A matrix with all weights 1, so the sensitivity |w·g| is |g|. */
function matrix(name: string, r: number, inF: number, outF: number, gradA: number[], gradE: number[], gradB: number[]): AdaloraMatrix {
  return {
    name,
    r,
    inF,
    outF,
    A: new Float64Array(r * inF).fill(1),
    E: new Float64Array(r).fill(1),
    B: new Float64Array(outF * r).fill(1),
    gradA: Float64Array.from(gradA),
    gradE: Float64Array.from(gradE),
    gradB: Float64Array.from(gradB),
  };
}

describe('rank allocator', () => {
  const config = { targetR: 1, tinit: 0, tfinal: 1, deltaT: 1, totalStep: 3, beta1: 0.5, beta2: 0.5 };

  it('smooths sensitivity and then uncertainty against the new average', () => {
    // I = 1 then 3, β = 0.5: Ī = 0.5 → 1.75; Ū = 0.25 → 0.125 + 0.5·|3 − 1.75| = 0.75; s = 1.3125
    const m = matrix('m', 1, 1, 1, [1], [1], [1]);
    const alloc = new RankAllocator(config, [m]);
    alloc.updateIpt([m]);
    m.gradA[0] = m.gradE[0] = m.gradB[0] = 3;
    alloc.updateIpt([m]);
    expectClose(alloc.tripletScores([m]).get('m')!, [3 * 1.3125]);
  });

  it('scores triplets, masks the lowest globally, then fixes and re-applies the pattern', () => {
    // One update from zero with β = 0.5 gives s = 0.125·I². Matrix m0 (r=2, in=2, out=2):
    //   triplet 0: E 1, A row (1,1), B col (1,1) → 0.125 + 0.125 + 0.125 = 0.375
    //   triplet 1: E 3, A row (2,2), B col (0,0) → 1.125 + 0.5 + 0 = 1.625
    // Matrix m1: only E = (0.5, 2) → 0.03125 and 0.5.
    const m0 = matrix('m0', 2, 2, 2, [1, 1, 2, 2], [1, 3], [1, 0, 1, 0]);
    const m1 = matrix('m1', 2, 2, 2, [0, 0, 0, 0], [0.5, 2], [0, 0, 0, 0]);
    const mats = [m0, m1];
    const alloc = new RankAllocator(config, mats);
    expect(alloc.initBgt).toBe(4);
    expect(alloc.targetBgt).toBe(2);

    // Step 1 of 3 with tfinal 1: b = int(2·0.5³ + 2) = 2, so the 2 lowest triplets go.
    const r1 = alloc.updateAndAllocate(mats, 1);
    expect(r1).toEqual({ budget: 2, masked: true });
    expectClose(alloc.tripletScores(mats).get('m0')!, [0.375, 1.625]);
    expectClose(alloc.tripletScores(mats).get('m1')!, [0.03125, 0.5]);
    expect(alloc.rankPattern).toEqual({ m0: [false, true], m1: [false, true] });
    expectClose(m0.E, [0, 1]);
    expectClose(m1.E, [0, 1]);

    // Step 2 = total − tfinal: final mask at the target budget, then the scores are reset.
    m0.E.fill(1);
    const r2 = alloc.updateAndAllocate(mats, 2);
    expect(r2).toEqual({ budget: 2, masked: true });
    expectClose(m0.E, [0, 1]);
    expect(() => alloc.tripletScores(mats)).toThrow(/no importance scores/);

    // Step 3 > total − tfinal: the stored pattern is re-applied to regrown values.
    m0.E.fill(0.7);
    m1.E.fill(0.7);
    alloc.updateAndAllocate(mats, 3);
    expectClose(m0.E, [0, 0.7]);
    expectClose(m1.E, [0, 0.7]);
  });

  it('masks every tied triplet at the threshold', () => {
    const a = matrix('a', 2, 1, 1, [1, 1], [1, 1], [1, 1]);
    const alloc = new RankAllocator({ ...config, targetR: 1 }, [a]);
    alloc.updateIpt([a]);
    // init 2, budget 1 → k = 1, but both triplets score the same: both are masked.
    expect(alloc.maskToBudget([a], 1)).toEqual({ a: [false, false] });
    expectClose(a.E, [0, 0]);
  });
});

describe("PEFT's schedule for examples/medical.peft (0-based global_step)", () => {
  // 2 layers of query_key_value, init_r 12, r 8: init_bgt 24, target_bgt 16; tinit 3, tfinal 3,
  // total_step 15 (5 epochs of 3 steps), deltaT 10. PEFT's loop calls update_and_allocate(0..14).
  const c = { initBgt: 24, targetBgt: 16, tinit: 3, tfinal: 3, totalStep: 15, deltaT: 10 };

  it('keeps the initial budget up to tinit, without masking', () => {
    for (let t = 0; t <= 3; t++) expect(budgetSchedule(t, c)).toEqual({ budget: 24, mask: false });
  });

  it('decays cubically in between and masks only where global_step % deltaT = 0', () => {
    // m = 1 − (t − 3)/9: t = 4 → 8·(8/9)³ + 16 = 21.62; t = 5 → 8·(7/9)³ + 16 = 19.76;
    // t = 10 → 8·(2/9)³ + 16 = 16.09
    expect(budgetSchedule(4, c)).toEqual({ budget: 21, mask: false });
    expect(budgetSchedule(5, c)).toEqual({ budget: 19, mask: false });
    expect(budgetSchedule(10, c)).toEqual({ budget: 16, mask: true });
    expect(budgetSchedule(11, c)).toEqual({ budget: 16, mask: false });
  });

  it('reaches the target at total_step − tfinal and stays there after', () => {
    expect(budgetSchedule(12, c)).toEqual({ budget: 16, mask: false }); // m = 0; update_and_allocate forces the mask
    expect(budgetSchedule(13, c)).toEqual({ budget: 16, mask: true });
    expect(budgetSchedule(14, c)).toEqual({ budget: 16, mask: true });
  });

  it("is what `pefc run` logs for the example", () => {
    const matrices = [0, 1].map((l) => ({ name: `transformer.encoder.layers.${l}.self_attention.query_key_value`, A: 'a', E: 'e', B: 'b' }));
    const config = { targetR: 8, tinit: 3, tfinal: 3, deltaT: 10, totalStep: 15, beta1: 0.85, beta2: 0.85 };
    expect(adaloraScheduleText({ config, matrices }, 12, 15)).toBe(
      "adalora: budget 24 -> 16 singular values; by PEFT's global_step (optimizer step - 1): 3 and below score only; masks at 10 (16); final mask at 12 (16), scores reset; re-applied at 13-14",
    );
  });
});

describe('update_and_allocate at total_step − tfinal', () => {
  it('masks with the importance scores as they were: no update from that step\'s gradients', () => {
    // tinit 1, tfinal 1, total 3: steps 0 and 1 only score, step 2 is the final mask.
    const config = { targetR: 1, tinit: 1, tfinal: 1, deltaT: 1, totalStep: 3, beta1: 0.5, beta2: 0.5 };
    const m = matrix('m', 2, 1, 1, [2, 1], [2, 1], [2, 1]);
    const alloc = new RankAllocator(config, [m]);
    expect(alloc.updateAndAllocate([m], 0)).toEqual({ budget: 2, masked: false });
    expect(alloc.updateAndAllocate([m], 1)).toEqual({ budget: 2, masked: false });
    // Gradients that would make triplet 0 the least important, were they scored.
    m.gradA.set([0, 100]);
    m.gradE.set([0, 100]);
    m.gradB.set([0, 100]);
    expect(alloc.updateAndAllocate([m], 2)).toEqual({ budget: 1, masked: true });
    expect(alloc.rankPattern).toEqual({ m: [true, false] });
    expectClose(m.E, [1, 0]);
  });
});
