/**
 * The training backend on a WebGPU device. One Program holds the step and the evaluation forward
 * at the run's fixed [B, T]; a step is one command encoder: for each micro-batch its inputs are
 * copied from a staging buffer written before submission, its forward and backward run, its loss
 * is copied aside and its gradients summed on the device; then the update runs once and the
 * losses (and gradient norm) come back in one map. Everything up to the submission happens when
 * step() is called, before its first await, and consecutive steps read their losses through two
 * alternating buffers: the loop submits the next step before awaiting this one's loss, so the
 * device is never left waiting on the host between steps.
 *
 * AdaLoRA's rank allocation (rank-allocator.ts) is recorded into the same encoder right after the
 * update and reads nothing back: its EMAs and keep-mask stay on the device until a checkpoint or
 * the saved adapter asks for them.
 */
import type { Graph } from "../../ir/index.js";
import { LR_INPUT, STEP_INPUT } from "../../ir/step-names.js";
import { buildProgram, dispatchesPerStep, type ParamLoc, type Program, type RngSlot, type Slice } from "../../codegen/wgsl/program/index.js";
import { capsWithin } from "../../codegen/wgsl/caps.js";
import type { MatmulVariant } from "../../codegen/wgsl/matmul/index.js";
import { PassTimer, type Device } from "../device/index.js";
import { f32ArrayToF16 } from "../io/half.js";
import type { AdaloraAllocation } from "../reference/executor.js";
import { streamId } from "../reference/exec/tensor.js";
import { streamKey } from "../reference/rng.js";
import type { MicroBatch, StepOutcome, TrainBackend, TrainSnapshot } from "../train/backend.js";
import type { BaseWeights } from "../train/weights.js";
import { graphInputs } from "../train/inputs.js";
import { ProgramExecutor, type DispatchTiming } from "./executor.js";
import { paramSource, uploadParams } from "./upload.js";
import { padBatch } from "./pad.js";
import { GpuRankAllocator, type DeviceAllocMatrix, type DeviceSlice } from "./rank-allocator.js";

export interface GpuBackendOptions {
  trainGraph: Graph;
  evalGraph?: Graph;
  /** Starting values, f32: method parameters, and base weights unless `base` streams them. */
  params: ReadonlyMap<string, Float32Array>;
  /** Base weights read one tensor at a time as they are uploaded. */
  base?: BaseWeights;
  seed: number;
  /** Micro-batch rows and the longest sequence the program is compiled for. */
  B: number;
  T: number;
  matmul: MatmulVariant;
  /** Store frozen linear weights as f16 (precision f16). */
  f16Weights?: boolean;
  /** One optimizer dispatch over the arenas (default); false plans one update op at a time. */
  fusedUpdate?: boolean;
  /** Run independent dispatches as one (program/merge.ts; default); false keeps one dispatch an op kernel. */
  mergeDispatches?: boolean;
  /** Plan for storage bindings no larger than this (below the device's own limit; tests split weights with it). */
  maxBindingBytes?: number;
  adalora?: AdaloraAllocation;
  padId?: number;
  /** Told how many of the program's kernels are compiled so far (done of total). */
  compiling?: (done: number, total: number) => void;
}

/** Dropout keys for one entry at one step, exactly as the reference executor derives them. */
export function rngKeys(slots: readonly RngSlot[], seed: number, step: number): Uint32Array {
  const keys = new Uint32Array(Math.max(1, slots.length));
  for (const s of slots) keys[s.slot] = streamKey(seed, streamId(`${s.stream}@${step}`));
  return keys;
}

const BATCH_INPUTS = ["input_ids", "labels", "positions"] as const;

export class GpuBackend implements TrainBackend {
  readonly device: string;
  private step_ = 0;
  private allocator: GpuRankAllocator | undefined;
  private staging: GPUBuffer | undefined;
  private stagingSlots = 0;
  /** Loss buffers of even and odd steps, so one step's map never holds up the next's copy. */
  private losses: ({ buf: GPUBuffer; read: GPUBuffer; slots: number } | undefined)[] = [undefined, undefined];
  /** Dispatches the last step recorded. */
  lastDispatches = 0;

  private constructor(
    readonly dev: Device,
    readonly program: Program,
    readonly exec: ProgramExecutor,
    private readonly o: GpuBackendOptions,
  ) {
    this.device = dev.info.adapter.description || dev.info.adapter.device || "WebGPU";
  }

  static async create(dev: Device, o: GpuBackendOptions): Promise<GpuBackend> {
    const program = buildProgram(o.trainGraph, o.evalGraph, { B: o.B, T: o.T, caps: capsWithin(dev.caps, o.maxBindingBytes), deviceBindingBytes: dev.caps.maxStorageBindingBytes, matmul: o.matmul, f16Weights: o.f16Weights === true, fusedUpdate: o.fusedUpdate !== false, mergeDispatches: o.mergeDispatches !== false });
    const exec = await ProgramExecutor.create(dev, program, o.compiling);
    const b = new GpuBackend(dev, program, exec, o);
    if (o.adalora) b.allocator = await GpuRankAllocator.create(dev, o.adalora.config, b.allocationMatrices(o.adalora));
    await b.uploadParams();
    await dev.flush();
    return b;
  }

  /**
   * Where the allocation finds each matrix's A, E, B and the gradients PEFT's update_and_allocate
   * sees: the clipped ones when the run clips. The update phase keeps those until it ends, and the
   * allocation is recorded right after it, so they are still there.
   */
  private allocationMatrices(a: AdaloraAllocation): DeviceAllocMatrix[] {
    const s = this.program.step;
    if (!s) throw new Error("gpu: AdaLoRA's allocation needs a training step");
    const grads = Object.keys(s.clipped).length ? s.clipped : s.grads;
    const slice = (loc: Slice): DeviceSlice => ({ buffer: this.exec.buffer(loc), offset: loc.offset, size: loc.bytes });
    const param = (name: string): ParamLoc => {
      const p = this.program.params.find((q) => q.name === name);
      if (!p) throw new Error(`gpu: no parameter ${name}`);
      if (p.dtype !== "f32") throw new Error(`gpu: parameter ${name} is stored ${p.dtype}`);
      return p;
    };
    const numel = (p: ParamLoc): number => p.shape.reduce((x, y) => x * y, 1);
    return a.matrices.map((m) => {
      const [A, E, B] = [param(m.A), param(m.E), param(m.B)];
      const r = E.shape[0]!;
      const g: DeviceAllocMatrix["grads"] = {};
      for (const [part, name] of [["A", m.A], ["E", m.E], ["B", m.B]] as const) if (grads[name]) g[part] = slice(grads[name]);
      return { name: m.name, r, inF: numel(A) / r, outF: numel(B) / r, params: { A: slice(A), E: slice(E), B: slice(B) }, grads: g };
    });
  }

  /** Starting values: from `params` when given there, else streamed from `base` (upload.ts). */
  private async uploadParams(): Promise<void> {
    await uploadParams(this.exec, this.program.params, paramSource(this.o.params, this.o.base));
  }

  /** The padded batch's input_ids, labels and positions as the program's input buffers hold them. */
  private batchData(m: MicroBatch, graph: Graph): Record<(typeof BATCH_INPUTS)[number], Int32Array> {
    const padded = padBatch(m, this.program.B, this.program.T, this.o.padId ?? 0);
    const t = graphInputs(graph, padded);
    return { input_ids: t.input_ids!.data as Int32Array, labels: t.labels!.data as Int32Array, positions: t.positions!.data as Int32Array };
  }

  private lossBuffers(step: number, slots: number): { buf: GPUBuffer; read: GPUBuffer; slots: number } {
    const i = step % 2;
    const have = this.losses[i];
    if (have && have.slots >= slots) return have;
    have?.buf.destroy();
    have?.read.destroy();
    const bytes = 4 * slots;
    const made = {
      buf: this.dev.gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, label: `losses ${i}` }),
      read: this.dev.gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ, label: `losses.read ${i}` }),
      slots,
    };
    this.losses[i] = made;
    return made;
  }

  /** Input bytes of one micro-batch in the staging buffer, and where each input starts. */
  private stagingLayout(): { per: number; at: Record<string, number> } {
    let per = 0;
    const at: Record<string, number> = {};
    for (const n of BATCH_INPUTS) {
      const loc = this.program.inputs[n];
      if (!loc) continue;
      at[n] = per;
      per += loc.bytes;
    }
    return { per, at };
  }

  async step(micro: readonly MicroBatch[], lr: number): Promise<StepOutcome> {
    return this.runStep(micro, lr);
  }

  /**
   * One step like step(), every dispatch timed on its own (the adapter needs timestamp-query):
   * the time of each dispatch in recording order, with the kernel it ran.
   */
  async profileStep(micro: readonly MicroBatch[], lr: number): Promise<{ outcome: StepOutcome; dispatches: { kernel: string; op: string; label: string; ns: number }[] }> {
    if (!this.dev.hasTimestamps) throw new Error("gpu: profiling needs the timestamp-query feature");
    const timer = new PassTimer(this.dev.gpu, Math.max(1, dispatchesPerStep(this.program, micro.length)));
    try {
      const timing: DispatchTiming = { timer, commands: [] };
      const outcome = await this.runStep(micro, lr, timing);
      const ns = await timer.read(timing.commands.length);
      return { outcome, dispatches: timing.commands.map((c, i) => ({ kernel: this.program.kernels[c.kernel]!.label, op: c.op, label: c.label, ns: ns[i]! })) };
    } finally {
      timer.destroy();
    }
  }

  private async runStep(micro: readonly MicroBatch[], lr: number, timing?: DispatchTiming): Promise<StepOutcome> {
    const s = this.program.step;
    if (!s) throw new Error("gpu: the program has no training step");
    if (micro.length === 0) throw new Error("gpu: a step needs at least one micro-batch");
    this.step_ += 1;
    const n = micro.length;
    const { per, at } = this.stagingLayout();
    if (!this.staging || this.stagingSlots < n) {
      this.staging?.destroy();
      this.staging = this.dev.gpu.createBuffer({ size: Math.max(4, per * n), usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, label: "batch staging" });
      this.stagingSlots = n;
    }
    micro.forEach((m, i) => {
      const d = this.batchData(m, this.o.trainGraph);
      for (const name of BATCH_INPUTS) if (at[name] !== undefined) this.dev.upload(this.staging!, d[name], i * per + at[name]!);
    });
    const lrLoc = this.program.inputs[LR_INPUT];
    const stepLoc = this.program.inputs[STEP_INPUT];
    if (lrLoc) this.exec.write(lrLoc, Float32Array.of(lr));
    if (stepLoc) this.exec.write(stepLoc, Float32Array.of(this.step_));
    this.exec.write({ buffer: s.rng.buffer, offset: 0, bytes: 0 }, rngKeys(s.rng.slots, this.o.seed, this.step_));

    const losses = this.lossBuffers(this.step_, n + 1);
    const enc = this.dev.gpu.createCommandEncoder({ label: `step ${this.step_}` });
    let dispatches = this.exec.record(enc, s.prologue, "prologue", timing);
    for (let i = 0; i < n; i++) {
      for (const name of BATCH_INPUTS) {
        const loc = this.program.inputs[name];
        if (loc) enc.copyBufferToBuffer(this.staging, i * per + at[name]!, this.exec.buffer(loc), loc.offset, loc.bytes);
      }
      dispatches += this.exec.record(enc, s.micro, `micro ${i}`, timing);
      enc.copyBufferToBuffer(this.exec.buffer(s.loss), s.loss.offset, losses.buf, 4 * i, 4);
      dispatches += this.exec.record(enc, i === 0 ? s.accumulateFirst : s.accumulate, `accumulate ${i}`, timing);
    }
    dispatches += this.exec.record(enc, s.update, "update", timing);
    // PEFT's loop numbers update_and_allocate's global_step from 0; step_ already counts this step.
    if (this.allocator) dispatches += this.allocator.record(enc, this.step_ - 1);
    if (s.gradNorm) enc.copyBufferToBuffer(this.exec.buffer(s.gradNorm), s.gradNorm.offset, losses.buf, 4 * n, 4);
    enc.copyBufferToBuffer(losses.buf, 0, losses.read, 0, 4 * (n + 1));
    if (timing) timing.timer.resolve(enc, timing.commands.length);
    this.dev.gpu.queue.submit([enc.finish()]);
    this.lastDispatches = dispatches;

    await this.dev.mapRead(losses.read, 0, 4 * (n + 1));
    const got = new Float32Array(losses.read.getMappedRange(0, 4 * (n + 1)).slice(0));
    losses.read.unmap();
    this.dev.checkErrors();
    let loss = 0;
    for (let i = 0; i < n; i++) loss += got[i]! / n;
    return s.gradNorm ? { loss, gradNorm: got[n]! } : { loss };
  }

  async evalLoss(batch: MicroBatch): Promise<number> {
    const e = this.program.eval;
    if (!e || !this.o.evalGraph) throw new Error("gpu: the program has no evaluation entry");
    const d = this.batchData(batch, this.o.evalGraph);
    for (const name of BATCH_INPUTS) {
      const loc = this.program.inputs[name];
      if (loc) this.exec.write(loc, d[name]);
    }
    // The reference evaluates at step 0 with dropout as in training; so does this.
    this.exec.write({ buffer: e.rng.buffer, offset: 0, bytes: 0 }, rngKeys(e.rng.slots, this.o.seed, 0));
    const enc = this.dev.gpu.createCommandEncoder({ label: "eval" });
    this.exec.record(enc, e.commands, "eval");
    this.dev.gpu.queue.submit([enc.finish()]);
    const [l] = await this.exec.readMany([e.loss]);
    return new Float32Array(l!)[0]!;
  }

  /** Current values of the named parameters. */
  async read(names: readonly string[]): Promise<Map<string, Float32Array>> {
    const locs = names.map((n) => {
      const p = this.program.params.find((q) => q.name === n);
      if (!p) throw new Error(`gpu: no parameter ${n}`);
      if (p.dtype !== "f32") throw new Error(`gpu: parameter ${n} is stored ${p.dtype}`);
      return p;
    });
    const data = await this.exec.readMany(locs);
    return new Map(names.map((n, i) => [n, new Float32Array(data[i]!)]));
  }

  async values(): Promise<Map<string, Float32Array>> {
    const origin = new Map(this.o.trainGraph.params.map((p) => [p.name, p.origin]));
    return this.read(this.program.params.filter((p) => !p.rowsOf && (p.trainable || origin.get(p.name) !== "base")).map((p) => p.name));
  }

  /** The gradients the last step summed over its micro-batches (before clipping), by parameter. */
  async grads(): Promise<Map<string, Float32Array>> {
    return this.readSlices(this.program.step?.grads ?? {});
  }

  private async readSlices(m: Readonly<Record<string, Slice>>): Promise<Map<string, Float32Array>> {
    const names = Object.keys(m);
    const data = await this.exec.readMany(names.map((n) => m[n]!));
    return new Map(names.map((n, i) => [n, new Float32Array(data[i]!)]));
  }

  async snapshot(): Promise<TrainSnapshot> {
    const snap: TrainSnapshot = { step: this.step_, params: await this.values(), optim: await this.readSlices(this.program.state) };
    const a = await this.allocator?.exportState();
    if (a) snap.allocator = a;
    return snap;
  }

  async restore(s: TrainSnapshot): Promise<void> {
    this.step_ = s.step;
    for (const [k, v] of s.params) {
      const loc = this.program.params.find((p) => p.name === k);
      if (!loc) throw new Error(`gpu: snapshot has parameter ${k}, which the program lacks`);
      this.exec.write(loc, loc.dtype === "f16" ? f32ArrayToF16(v) : v);
    }
    for (const [k, v] of s.optim) {
      const loc = this.program.state[k];
      if (!loc) throw new Error(`gpu: snapshot has optimizer state ${k}, which the program lacks`);
      this.exec.write(loc, v);
    }
    this.allocator?.importState(s.allocator);
    await this.dev.flush();
  }

  /** AdaLoRA's keep-masks, read from the device. */
  async rankPattern(): Promise<Record<string, boolean[]> | undefined> {
    return this.allocator?.rankPattern();
  }

  dispose(): void {
    this.exec.destroy();
    this.allocator?.destroy();
    this.staging?.destroy();
    for (const l of this.losses) {
      l?.buf.destroy();
      l?.read.destroy();
    }
  }
}
