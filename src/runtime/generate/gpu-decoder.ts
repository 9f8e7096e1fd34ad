/**
 * Generation on a WebGPU device with a KV cache. The decode-step graph (one position of one
 * sequence, codegen/wgsl/decode) is compiled once into a Program; its caches are graph inputs
 * whose buffers persist, so each position costs the same fixed list of dispatches whatever its
 * index. The prompt is prefilled position by position with that same step: every position's
 * inputs (token, position, row) sit in a staging buffer, are copied into the step's input
 * buffers between steps, and up to CHUNK positions go in one command buffer; only the last
 * position's logits (V floats) are read back.
 */
import { decodeStepGraph, ROW_INPUT, type DecodeSize, type DecodeStep } from "../../codegen/wgsl/decode/step-graph.js";
import { capsWithin } from "../../codegen/wgsl/caps.js";
import type { MatmulVariant } from "../../codegen/wgsl/matmul/index.js";
import { buildProgram, type ForwardEntry, type Program, type TensorLoc } from "../../codegen/wgsl/program/index.js";
import type { Graph } from "../../ir/index.js";
import { chooseMatmulVariant, openDevice, type Device } from "../device/index.js";
import { ProgramExecutor } from "../gpu/executor.js";
import { paramSource, uploadParams } from "../gpu/upload.js";
import type { BaseWeights } from "../train/weights.js";
import { CachePlan, type StepInput } from "./cache-plan.js";
import type { Decoder } from "./decoder.js";
import { stepParams } from "./step-params.js";

export interface GpuDecoderOptions extends DecodeSize {
  /** The device to use; opened when absent. */
  device?: Device;
  /** The matmul variant; measured (and cached) for the device when absent. */
  matmul?: MatmulVariant;
  /** Plan for storage bindings no larger than this (tests split weights with it). */
  maxBindingBytes?: number;
  /** Base weights not in `params`, read one tensor at a time as they are uploaded. */
  base?: BaseWeights;
}

/** Positions recorded into one command buffer at most. */
const CHUNK = 64;

const STEP_INPUTS = ["input_ids", "positions", ROW_INPUT] as const;

export class GpuDecoder implements Decoder {
  private readonly plan: CachePlan;
  private readonly stepInputs: { name: (typeof STEP_INPUTS)[number]; loc: TensorLoc }[];
  private readonly staging: GPUBuffer;
  private readonly readback: GPUBuffer;
  private readonly logits: TensorLoc;
  /** Dispatches each position of the last next() call recorded. */
  lastDispatches: number[] = [];
  /** Positions run since creation. */
  positionsRun = 0;

  private constructor(
    readonly dev: Device,
    readonly step: DecodeStep,
    readonly program: Program,
    private readonly exec: ProgramExecutor,
    private readonly entry: ForwardEntry,
    /** The decoder opened the device itself, so dispose() closes it. */
    private readonly ownsDevice: boolean,
  ) {
    this.plan = new CachePlan(step.virtualTokens, step.maxLen);
    this.stepInputs = STEP_INPUTS.filter((n) => program.inputs[n]).map((name) => ({ name, loc: program.inputs[name]! }));
    this.staging = dev.createBuffer(4 * Math.max(1, this.stepInputs.length) * CHUNK, "decode step inputs", GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
    this.logits = entry.outputs["logits"]!;
    this.readback = dev.gpu.createBuffer({ size: this.logits.bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: "logits readback" });
  }

  /** `params`: the model's and adapter's values; base weights missing there stream from `o.base`. */
  static async create(forward: Graph, params: ReadonlyMap<string, Float32Array>, o: GpuDecoderOptions): Promise<GpuDecoder> {
    const step = decodeStepGraph(forward, o);
    // The setup graph (prefix keys/values, prompt rows) gets any base weight it reads up front.
    const streamed = new Set(o.base?.names ?? []);
    const have = new Map(params);
    for (const p of step.setup.params) if (!have.has(p.name) && o.base && streamed.has(p.name)) have.set(p.name, await o.base.readF32(p.name));
    const values = stepParams(step, have, streamed);
    const dev = o.device ?? (await openDevice());
    try {
      const matmul = o.matmul ?? (await chooseMatmulVariant(dev)).variant;
      const program = buildProgram(undefined, undefined, { B: 1, T: 1, caps: capsWithin(dev.caps, o.maxBindingBytes), matmul }, { graph: step.graph, outputs: ["logits"] });
      const exec = await ProgramExecutor.create(dev, program);
      await uploadParams(exec, program.params, paramSource(values, o.base));
      await dev.flush();
      return new GpuDecoder(dev, step, program, exec, program.forward!, o.device === undefined);
    } catch (e) {
      if (o.device === undefined) dev.destroy();
      throw e;
    }
  }

  get maxTokens(): number {
    return this.plan.maxTokens;
  }

  /** Dispatches one position records: the same for every position. */
  get dispatchesPerPosition(): number {
    return this.entry.commands.filter((c) => c.kind === "dispatch").length;
  }

  async next(ids: readonly number[]): Promise<Float32Array> {
    const steps = this.plan.plan(ids);
    this.lastDispatches = [];
    for (let at = 0; at < steps.length; at += CHUNK) {
      const chunk = steps.slice(at, at + CHUNK);
      this.run(chunk, at + CHUNK >= steps.length);
    }
    await this.readback.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(this.readback.getMappedRange().slice(0));
    this.readback.unmap();
    this.dev.checkErrors();
    this.plan.commit(ids);
    this.positionsRun += steps.length;
    return out;
  }

  /** Records and submits the positions of one chunk; the last chunk copies the logits out. */
  private run(steps: readonly StepInput[], last: boolean): void {
    const n = this.stepInputs.length;
    const data = new Int32Array(steps.length * n);
    steps.forEach((s, i) => this.stepInputs.forEach((x, k) => (data[i * n + k] = x.name === "input_ids" ? s.id : x.name === "positions" ? s.pos : s.row)));
    this.dev.upload(this.staging, data);
    const enc = this.dev.gpu.createCommandEncoder({ label: "decode" });
    steps.forEach((s, i) => {
      this.stepInputs.forEach((x, k) => enc.copyBufferToBuffer(this.staging, 4 * (i * n + k), this.exec.buffer(x.loc), x.loc.offset, 4));
      this.lastDispatches.push(this.exec.record(enc, this.entry.commands, `position ${s.pos}`));
    });
    if (last) enc.copyBufferToBuffer(this.exec.buffer(this.logits), this.logits.offset, this.readback, 0, this.logits.bytes);
    this.dev.gpu.queue.submit([enc.finish()]);
  }

  dispose(): void {
    this.exec.destroy();
    this.staging.destroy();
    this.readback.destroy();
    if (this.ownsDevice) this.dev.destroy();
  }
}
