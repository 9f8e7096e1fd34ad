/**
 * AdaLoRA's rank allocation on the device: PEFT's update_and_allocate, recorded into the step's
 * command encoder after the update, so a step reads nothing back for it. It owns the EMA buffers
 * (Ī and Ū of every element of every A, E, B), the triplet scores and the keep-mask; the budget
 * schedule is a function of the step, computed here on the host, and reaches the kernels as one
 * number (k, how many triplets to mask) written before the step is submitted. Which kernels run
 * follows the reference's step indexing (src/runtime/reference/rank-allocator.ts):
 *   step < total − tfinal: update the EMAs; when the schedule masks, score and mask to the budget;
 *   step = total − tfinal: score and mask with the EMAs as they are, then zero them (resetIpt);
 *   later steps: re-apply the stored keep-mask.
 * The EMAs and keep-mask come back only when asked (checkpoints, the saved rank pattern), under
 * the reference's names (`ipt.<matrix>.<A|E|B>`, `unc.…`), so checkpoints move between backends.
 */
import type { KernelSpec } from "../../codegen/wgsl/kernel.js";
import { adaloraEmaKernel, adaloraMaskKernel, adaloraReapplyKernel, adaloraScoreKernel, allocLayout, ALLOC_PARTS, type AllocLayout, type AllocPart } from "../../codegen/wgsl/kernels/adalora/index.js";
import type { Device } from "../device/index.js";
import { budgetSchedule, type AllocatorConfig, type RankPattern } from "../reference/rank-allocator.js";

/** A byte range of a device buffer holding f32 values. */
export interface DeviceSlice {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** One adapted matrix: its parameters and the gradients the allocation reads (none: zero). */
export interface DeviceAllocMatrix {
  name: string;
  r: number;
  inF: number;
  outF: number;
  params: Record<AllocPart, DeviceSlice>;
  grads: Partial<Record<AllocPart, DeviceSlice>>;
}

/** The allocator's state as the reference exports it: EMAs by name and the keep-masks. */
export interface AllocatorState {
  tensors: Map<string, Float32Array>;
  rankPattern?: RankPattern;
}

interface Dispatch {
  spec: KernelSpec;
  group: GPUBindGroup;
}

export class GpuRankAllocator {
  readonly initBgt: number;
  readonly targetBgt: number;
  private readonly emas: GPUBuffer[];
  private readonly scores: GPUBuffer;
  private readonly keep: GPUBuffer;
  private readonly sched: GPUBuffer;
  private readonly emaPass: Dispatch[] = [];
  private readonly scorePass: Dispatch[] = [];
  private readonly maskPass: Dispatch[] = [];
  private readonly reapplyPass: Dispatch[] = [];
  /** The EMAs hold values (the reference's exist): set by an update, cleared by the reset. */
  private emaLive = false;
  /** A keep-mask has been computed or restored (the reference's rankPattern is defined). */
  private patternSet = false;

  private constructor(
    readonly dev: Device,
    readonly config: AllocatorConfig,
    readonly matrices: readonly DeviceAllocMatrix[],
    readonly layout: AllocLayout,
  ) {
    this.initBgt = layout.triplets;
    this.targetBgt = config.targetR * matrices.length;
    this.emas = layout.matrices.map((l, k) => dev.createBuffer(4 * l.emaElements, `adalora.ema:${matrices[k]!.name}`));
    this.scores = dev.createBuffer(4 * layout.scoreElements, "adalora.scores");
    // Gaps between matrices' segments stay +∞ (no kernel writes them): below every score.
    dev.upload(this.scores, new Float32Array(layout.scoreElements).fill(Infinity));
    this.keep = dev.createBuffer(4 * layout.scoreElements, "adalora.keep");
    this.sched = dev.createBuffer(4, "adalora.sched");
  }

  /** Creates the buffers and compiles the kernels for `matrices` (E, A, B and gradients in f32). */
  static async create(dev: Device, config: AllocatorConfig, matrices: readonly DeviceAllocMatrix[]): Promise<GpuRankAllocator> {
    if (matrices.length === 0) throw new Error("adalora allocation: no matrices");
    const a = new GpuRankAllocator(dev, config, matrices, allocLayout(matrices));
    await a.build();
    return a;
  }

  private async build(): Promise<void> {
    const { dev, config, layout } = this;
    const caps = dev.caps;
    const seg = (buffer: GPUBuffer, at: number, count: number): DeviceSlice => ({ buffer, offset: 4 * at, size: 4 * count });
    const specs: KernelSpec[] = [];
    const plans: { into: Dispatch[]; spec: KernelSpec; buffers: Record<string, DeviceSlice> }[] = [];
    const add = (into: Dispatch[], spec: KernelSpec, buffers: Record<string, DeviceSlice>) => {
      specs.push(spec);
      plans.push({ into, spec, buffers });
    };
    this.matrices.forEach((m, k) => {
      const l = layout.matrices[k]!;
      for (const part of ALLOC_PARTS) {
        const { at, count } = l.parts[part];
        const w = m.params[part];
        if (w.size !== 4 * count) throw new Error(`adalora allocation: ${m.name}.${part} has ${w.size / 4} values, expected ${count}`);
        const g = m.grads[part];
        if (g && g.size !== w.size) throw new Error(`adalora allocation: the gradient of ${m.name}.${part} has ${g.size / 4} values, expected ${count}`);
        add(this.emaPass, adaloraEmaKernel(count, config.beta1, config.beta2, g !== undefined, caps), { w, ...(g ? { g } : {}), ema: seg(this.emas[k]!, at, 2 * count) });
      }
      const whole = { buffer: this.emas[k]!, offset: 0, size: 4 * l.emaElements };
      add(this.scorePass, adaloraScoreKernel(l, caps), { ema: whole, scores: seg(this.scores, l.scoreAt, m.r) });
      add(this.maskPass, adaloraMaskKernel(m.r, layout.scoreElements, caps), {
        scores: seg(this.scores, 0, layout.scoreElements),
        own: seg(this.scores, l.scoreAt, m.r),
        sched: seg(this.sched, 0, 1),
        keep: seg(this.keep, l.scoreAt, m.r),
        e: m.params.E,
      });
      add(this.reapplyPass, adaloraReapplyKernel(m.r, caps), { keep: seg(this.keep, l.scoreAt, m.r), e: m.params.E });
    });
    await dev.prepare(...specs);
    for (const p of plans) {
      const { layout: bgl, key } = dev.pipelineFor(p.spec);
      p.into.push({ spec: p.spec, group: dev.bindGroupFor(p.spec, bgl, key, p.buffers) });
    }
  }

  schedule(step: number): { budget: number; mask: boolean } {
    return budgetSchedule(step, { initBgt: this.initBgt, targetBgt: this.targetBgt, ...this.config });
  }

  /**
   * Records the allocation after an optimizer step into `enc`, after the update; `step` is PEFT's
   * 0-based global_step (0 after the first optimizer step), as the reference allocator takes it.
   * Returns the dispatches recorded. Writes k to the device queue now, so `enc` must be submitted
   * before the next call records.
   */
  record(enc: GPUCommandEncoder, step: number): number {
    const end = this.config.totalStep - this.config.tfinal;
    const passes: Dispatch[][] = [];
    let reset = false;
    if (step < end) {
      passes.push(this.emaPass);
      this.emaLive = true;
      const { budget, mask } = this.schedule(step);
      if (mask) passes.push(...this.maskTo(budget));
    } else if (step === end) {
      // The reference scores with EMAs it has never updated only by failing; so does this.
      if (!this.emaLive) throw new Error(`adalora allocation: no importance scores at the final masking step ${step}`);
      passes.push(...this.maskTo(this.schedule(step).budget));
      reset = true;
    } else {
      if (!this.patternSet) throw new Error(`adalora allocation: no rank pattern to re-apply at step ${step}`);
      passes.push(this.reapplyPass);
    }
    const pass = enc.beginComputePass({ label: `adalora ${step}` });
    let dispatches = 0;
    for (const d of passes.flat()) {
      const { pipeline } = this.dev.pipelineFor(d.spec);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, d.group);
      pass.dispatchWorkgroups(...d.spec.dispatch);
      dispatches++;
    }
    pass.end();
    if (reset) {
      for (const b of this.emas) enc.clearBuffer(b);
      this.emaLive = false;
    }
    return dispatches;
  }

  /** The scoring and masking passes for `budget`, with k written for them. */
  private maskTo(budget: number): Dispatch[][] {
    const k = Math.min(this.initBgt, Math.max(0, this.initBgt - budget));
    this.dev.upload(this.sched, Uint32Array.of(k));
    this.patternSet = true;
    return [this.scorePass, this.maskPass];
  }

  /** The keep-masks by matrix name, or undefined before the first masking. */
  async rankPattern(): Promise<RankPattern | undefined> {
    if (!this.patternSet) return undefined;
    const keep = new Uint32Array(await this.dev.read(this.keep, 4 * this.layout.scoreElements));
    const out: RankPattern = {};
    this.matrices.forEach((m, k) => {
      const at = this.layout.matrices[k]!.scoreAt;
      out[m.name] = Array.from(keep.subarray(at, at + m.r), (v) => v !== 0);
    });
    return out;
  }

  /** The triplet scores of the last masking, by matrix name (for tests and diagnostics). */
  async readScores(): Promise<Map<string, Float32Array>> {
    const s = new Float32Array(await this.dev.read(this.scores, 4 * this.layout.scoreElements));
    return new Map(this.matrices.map((m, k) => {
      const at = this.layout.matrices[k]!.scoreAt;
      return [m.name, s.slice(at, at + m.r)];
    }));
  }

  /** The EMAs (when they hold values) and the keep-masks (when set); undefined when neither. */
  async exportState(): Promise<AllocatorState | undefined> {
    if (!this.emaLive && !this.patternSet) return undefined;
    const tensors = new Map<string, Float32Array>();
    if (this.emaLive) {
      const data = await this.readEmas();
      this.matrices.forEach((m, k) => {
        for (const part of ALLOC_PARTS) {
          const { at, count } = this.layout.matrices[k]!.parts[part];
          tensors.set(`ipt.${m.name}.${part}`, data[k]!.slice(at, at + count));
          tensors.set(`unc.${m.name}.${part}`, data[k]!.slice(at + count, at + 2 * count));
        }
      });
    }
    const rankPattern = await this.rankPattern();
    return rankPattern ? { tensors, rankPattern } : { tensors };
  }

  /**
   * Replaces the device state with `s` (undefined: none, as before the first step). The EMAs come
   * all or none, as the reference exports them.
   */
  importState(s: AllocatorState | undefined): void {
    const tensors = s?.tensors ?? new Map<string, Float32Array>();
    this.emaLive = tensors.size > 0;
    this.matrices.forEach((m, k) => {
      const l = this.layout.matrices[k]!;
      const data = new Float32Array(l.emaElements);
      if (this.emaLive) {
        for (const part of ALLOC_PARTS) {
          const { at, count } = l.parts[part];
          for (const [kind, off] of [["ipt", 0], ["unc", count]] as const) {
            const v = tensors.get(`${kind}.${m.name}.${part}`);
            if (!v) throw new Error(`adalora allocation: the saved state lacks ${kind}.${m.name}.${part}`);
            if (v.length !== count) throw new Error(`adalora allocation: saved ${kind}.${m.name}.${part} has ${v.length} values, expected ${count}`);
            data.set(v, at + off);
          }
        }
      }
      this.dev.upload(this.emas[k]!, data);
    });
    const pattern = s?.rankPattern;
    this.patternSet = pattern !== undefined;
    const keep = new Uint32Array(this.layout.scoreElements);
    if (pattern) {
      this.matrices.forEach((m, k) => {
        const mask = pattern[m.name];
        if (!mask || mask.length !== m.r) throw new Error(`adalora allocation: the saved rank pattern ${mask ? `has ${mask.length} entries for ${m.name}, expected ${m.r}` : `lacks ${m.name}`}`);
        keep.set(mask.map((v) => (v ? 1 : 0)), this.layout.matrices[k]!.scoreAt);
      });
    }
    this.dev.upload(this.keep, keep);
  }

  /** Every EMA buffer, with one copy and one map. */
  private async readEmas(): Promise<Float32Array[]> {
    const data = await this.dev.readRanges(this.emas.map((b) => ({ buffer: b, offset: 0, bytes: b.size })));
    return data.map((d) => new Float32Array(d));
  }

  destroy(): void {
    for (const b of [...this.emas, this.scores, this.keep, this.sched]) b.destroy();
  }
}
