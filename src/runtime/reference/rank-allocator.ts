// AdaLoRA's rank allocation (peft-methods.md §2.5–2.8), with the step indexing of PEFT's
// AdaLoraModel.update_and_allocate(global_step), called after optimizer.step() and before
// zero_grad(). For every element w of every A, E, B:
//   I = |w · ∂L/∂w|;  Ī = β1 Ī + (1−β1) I;  Ū = β2 Ū + (1−β2) |I − Ī|  (new Ī);  s(w) = Ī · Ū
// Triplet i of matrix k scores S = s(E_i) + mean_j s(A_ij) + mean_j s(B_ji). The cubic schedule
// gives a global budget b(t); when it says so, E_i := 0 for every triplet with S ≤ θ, where θ is
// the (init_bgt − b)-th smallest score over all matrices (ties can mask more).
// Shapes per matrix: A [r,in], E [r] (PEFT's [r,1]), B [out,r]. Divergence: where PEFT's
// kthvalue would be asked for k = 0 (only when target_r = init_r) and raise, nothing is masked.

import { like, type Floats } from './floats.js';

export interface ScheduleConfig {
  initBgt: number;
  targetBgt: number;
  tinit: number;
  tfinal: number;
  totalStep: number;
  deltaT: number;
}

/** PEFT's budget_schedule: the budget at `step` and whether to mask at this step. */
export function budgetSchedule(step: number, c: ScheduleConfig): { budget: number; mask: boolean } {
  if (step <= c.tinit) return { budget: c.initBgt, mask: false };
  if (step > c.totalStep - c.tfinal) return { budget: c.targetBgt, mask: true };
  const mul = 1 - (step - c.tinit) / (c.totalStep - c.tfinal - c.tinit);
  const budget = Math.trunc((c.initBgt - c.targetBgt) * mul ** 3 + c.targetBgt);
  return { budget, mask: step % c.deltaT === 0 };
}

export interface AdaloraMatrix {
  name: string;
  r: number;
  inF: number;
  outF: number;
  A: Floats;
  E: Floats;
  B: Floats;
  gradA: Floats;
  gradE: Floats;
  gradB: Floats;
}

export interface AllocatorConfig {
  targetR: number;
  tinit: number;
  tfinal: number;
  deltaT: number;
  totalStep: number;
  beta1: number;
  beta2: number;
}

interface Ema {
  ipt: Floats;
  unc: Floats;
}

type Part = 'A' | 'E' | 'B';
const PARTS: readonly Part[] = ['A', 'E', 'B'];

/** Keep-masks per matrix name: true = triplet kept (PEFT's rank_pattern). */
export type RankPattern = Record<string, boolean[]>;

export class RankAllocator {
  readonly initBgt: number;
  readonly targetBgt: number;
  rankPattern: RankPattern | undefined;
  private ema = new Map<string, Ema>();

  constructor(
    readonly config: AllocatorConfig,
    matrices: readonly { name: string; r: number }[],
  ) {
    this.initBgt = matrices.reduce((n, m) => n + m.r, 0);
    this.targetBgt = config.targetR * matrices.length;
  }

  schedule(step: number): { budget: number; mask: boolean } {
    return budgetSchedule(step, { initBgt: this.initBgt, targetBgt: this.targetBgt, ...this.config });
  }

  resetIpt(): void {
    this.ema.clear();
  }

  /** The EMAs and rank pattern as named arrays, for checkpoints that resume bit-identically. */
  exportState(): { tensors: Map<string, Floats>; rankPattern?: RankPattern } {
    const tensors = new Map<string, Floats>();
    for (const [k, e] of this.ema) {
      tensors.set(`ipt.${k}`, e.ipt);
      tensors.set(`unc.${k}`, e.unc);
    }
    return this.rankPattern ? { tensors, rankPattern: this.rankPattern } : { tensors };
  }

  importState(s: { tensors: ReadonlyMap<string, Floats>; rankPattern?: RankPattern }): void {
    this.ema.clear();
    for (const [k, v] of s.tensors) {
      if (!k.startsWith("ipt.")) continue;
      const key = k.slice(4);
      const unc = s.tensors.get(`unc.${key}`);
      if (!unc) throw new Error(`allocator state: ${key} has importance but no uncertainty`);
      this.ema.set(key, { ipt: v, unc });
    }
    this.rankPattern = s.rankPattern;
  }

  /** One EMA update of sensitivity and uncertainty from the current weights and gradients. */
  updateIpt(mats: readonly AdaloraMatrix[]): void {
    const { beta1, beta2 } = this.config;
    for (const m of mats) {
      for (const part of PARTS) {
        const w = m[part];
        const g = m[`grad${part}`];
        const key = `${m.name}.${part}`;
        let e = this.ema.get(key);
        if (!e) this.ema.set(key, (e = { ipt: like(w, w.length), unc: like(w, w.length) }));
        for (let i = 0; i < w.length; i++) {
          const sens = Math.abs(w[i]! * g[i]!);
          e.ipt[i] = beta1 * e.ipt[i]! + (1 - beta1) * sens;
          e.unc[i] = beta2 * e.unc[i]! + (1 - beta2) * Math.abs(sens - e.ipt[i]!);
        }
      }
    }
  }

  private score(name: string, part: Part, i: number): number {
    const e = this.ema.get(`${name}.${part}`);
    if (!e) throw new Error(`reference: no importance scores for ${name}.${part}`);
    return e.ipt[i]! * e.unc[i]!;
  }

  /** S for every triplet of every matrix. */
  tripletScores(mats: readonly AdaloraMatrix[]): Map<string, Float64Array> {
    const out = new Map<string, Float64Array>();
    for (const m of mats) {
      const S = new Float64Array(m.r);
      for (let i = 0; i < m.r; i++) {
        let a = 0;
        for (let j = 0; j < m.inF; j++) a += this.score(m.name, 'A', i * m.inF + j);
        let b = 0;
        for (let j = 0; j < m.outF; j++) b += this.score(m.name, 'B', j * m.r + i);
        S[i] = this.score(m.name, 'E', i) + a / m.inF + b / m.outF;
      }
      out.set(m.name, S);
    }
    return out;
  }

  /** Zeroes E where S ≤ θ (in place) and returns the keep-mask. */
  maskToBudget(mats: readonly AdaloraMatrix[], budget: number): RankPattern {
    const scores = this.tripletScores(mats);
    const k = this.initBgt - budget;
    const all = [...scores.values()].flatMap((s) => [...s]).sort((x, y) => x - y);
    const threshold = k >= 1 ? all[k - 1]! : -Infinity;
    const pattern: RankPattern = {};
    for (const m of mats) {
      const S = scores.get(m.name)!;
      pattern[m.name] = [...S].map((v) => !(v <= threshold));
      for (let i = 0; i < m.r; i++) if (S[i]! <= threshold) m.E[i] = 0;
    }
    return pattern;
  }

  /** Re-applies the stored pattern: E_i := 0 where the pattern says pruned. */
  maskUsingRankPattern(mats: readonly AdaloraMatrix[]): void {
    const pattern = this.rankPattern;
    if (!pattern) throw new Error('reference: no rank pattern to re-apply');
    for (const m of mats) {
      const keep = pattern[m.name];
      if (!keep) throw new Error(`reference: rank pattern lacks ${m.name}`);
      for (let i = 0; i < m.r; i++) if (!keep[i]) m.E[i] = 0;
    }
  }

  /**
   * PEFT's AdaLoraModel.update_and_allocate(global_step), global_step 0-based as PEFT's documented
   * loop passes it: 0 after the first optimizer step. At global_step = total_step − tfinal the EMAs
   * are not updated, the final mask is taken at the target budget, and the EMAs are dropped.
   */
  updateAndAllocate(mats: readonly AdaloraMatrix[], globalStep: number): { budget?: number; masked: boolean } {
    const end = this.config.totalStep - this.config.tfinal;
    if (globalStep < end) {
      this.updateIpt(mats);
      const { budget, mask } = this.schedule(globalStep);
      if (mask) this.rankPattern = this.maskToBudget(mats, budget);
      return { budget, masked: mask };
    }
    if (globalStep === end) {
      const { budget } = this.schedule(globalStep);
      this.rankPattern = this.maskToBudget(mats, budget);
      this.resetIpt();
      return { budget, masked: true };
    }
    this.maskUsingRankPattern(mats);
    return { masked: true };
  }
}
