// The Device: one GPUDevice with its adapter facts, pipeline cache, buffer helpers and error
// capture. Dawn reports most mistakes (bad bindings, out-of-range copies) as uncaptured errors
// long after the call; they are collected here and thrown as Errors at the next sync point
// (flush, readback, timed run), so a kernel bug fails loudly instead of returning zeros.

import type { KernelSpec } from "../../codegen/wgsl/kernel.js";
import type { DeviceInfo } from "./adapter-info.js";
import { createBuffer, readback, upload } from "./buffers.js";
import { PipelineCache, type CachedPipeline } from "./pipelines.js";
import { DispatchRecorder, type BufferBinding, type RecorderHost } from "./recorder.js";
import { PassTimer, type TimingMethod } from "./timing.js";
import { DeviceLostError } from "./lost.js";
import { paceDawnEvents, pacingDisabled } from "./event-pacing.js";

const BIND_GROUP_CACHE_LIMIT = 4096;

export class Device implements RecorderHost {
  readonly pipelines: PipelineCache;
  private readonly errors: string[] = [];
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private lost: string | undefined;
  /** Set by destroy(): the loss that follows is ours, not the driver's. */
  private destroying = false;
  /** Ends this device's hold on the pacing of Dawn's waits (CPU adapters; see event-pacing.ts). */
  private readonly releasePacing: () => void = () => {};

  constructor(
    readonly gpu: GPUDevice,
    readonly info: DeviceInfo,
    /** Held so the Dawn instance outlives the device (see gpu.ts). */
    private readonly instance: GPU,
  ) {
    this.pipelines = new PipelineCache(gpu);
    if (info.adapter.isCpu && !pacingDisabled()) this.releasePacing = paceDawnEvents();
    gpu.onuncapturederror = (e: GPUUncapturedErrorEvent) => {
      this.errors.push(e.error.message);
    };
    void gpu.lost.then((l) => {
      if (!this.destroying) this.lost = l.message || l.reason || "device lost";
      this.releasePacing();
    });
  }

  get caps(): DeviceInfo["caps"] {
    return this.info.caps;
  }

  get hasTimestamps(): boolean {
    return this.info.features.includes("timestamp-query");
  }

  /** Throws the device errors reported since the last check. */
  checkErrors(): void {
    if (this.lost) throw new DeviceLostError(this.lost);
    if (this.errors.length) {
      const all = this.errors.splice(0);
      throw new Error(`WebGPU error${all.length > 1 ? "s" : ""}:\n${all.join("\n")}`);
    }
  }

  /** Waits for submitted work, then throws any device error it raised. */
  async flush(): Promise<void> {
    await this.gpu.queue.onSubmittedWorkDone();
    this.checkErrors();
  }

  createBuffer(bytes: number, label?: string, usage?: number): GPUBuffer {
    return createBuffer(this.gpu, bytes, label, usage);
  }

  upload(buffer: GPUBuffer, data: ArrayBufferView, offsetBytes = 0): void {
    upload(this.gpu, buffer, data, offsetBytes);
  }

  /** A storage buffer holding `data`. */
  bufferFrom(data: ArrayBufferView, label?: string): GPUBuffer {
    const b = this.createBuffer(data.byteLength, label);
    this.upload(b, data);
    return b;
  }

  async read(buffer: GPUBuffer, bytes?: number, offsetBytes = 0): Promise<ArrayBuffer> {
    const out = await this.whenLost(readback(this.gpu, buffer, bytes, offsetBytes));
    this.checkErrors();
    return out;
  }

  /** Maps a MAP_READ buffer; a device lost meanwhile becomes a DeviceLostError, not Dawn's empty rejection. */
  async mapRead(buffer: GPUBuffer, offset?: number, size?: number): Promise<void> {
    await this.whenLost(buffer.mapAsync(GPUMapMode.READ, offset, size));
  }

  /**
   * `work`, or the device's loss when it fails because of one. Dawn rejects a map on a lost device
   * before the lost promise has settled, so a failure waits briefly for that promise.
   */
  private async whenLost<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (e) {
      if (!this.destroying) {
        const l = await Promise.race([this.gpu.lost, new Promise<undefined>((r) => setTimeout(() => r(undefined), 250))]);
        if (l) throw new DeviceLostError(l.message || l.reason || "device lost");
      }
      throw e;
    }
  }

  /** Several byte ranges of buffers, with one staging buffer and one map. */
  async readRanges(ranges: readonly { buffer: GPUBuffer; offset: number; bytes: number }[]): Promise<ArrayBuffer[]> {
    const total = ranges.reduce((a, r) => a + r.bytes, 0);
    if (total === 0) return ranges.map(() => new ArrayBuffer(0));
    const staging = this.gpu.createBuffer({ size: total, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: "readback" });
    const enc = this.gpu.createCommandEncoder({ label: "readback" });
    let at = 0;
    for (const r of ranges) {
      enc.copyBufferToBuffer(r.buffer, r.offset, staging, at, r.bytes);
      at += r.bytes;
    }
    this.gpu.queue.submit([enc.finish()]);
    await this.mapRead(staging);
    const all = staging.getMappedRange();
    at = 0;
    const out = ranges.map((r) => {
      const b = all.slice(at, at + r.bytes);
      at += r.bytes;
      return b;
    });
    staging.unmap();
    staging.destroy();
    this.checkErrors();
    return out;
  }

  async readF32(buffer: GPUBuffer, count: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, 4 * count));
  }

  /** Compiles the kernels' pipelines (once each); recorders need them ready. */
  async prepare(...specs: KernelSpec[]): Promise<void> {
    await Promise.all(specs.map((s) => this.pipelines.prepare(s)));
    this.checkErrors();
  }

  recorder(label?: string, timer?: PassTimer): DispatchRecorder {
    return new DispatchRecorder(this, label, timer);
  }

  pipelineFor(spec: KernelSpec): CachedPipeline {
    return this.pipelines.get(spec);
  }

  bindGroupFor(spec: KernelSpec, layout: GPUBindGroupLayout, pipelineKey: string, buffers: Record<string, BufferBinding>): GPUBindGroup {
    const parts: string[] = [pipelineKey];
    const entries: GPUBindGroupEntry[] = [];
    for (const b of spec.bindings) {
      const given = buffers[b.name];
      if (!given) throw new Error(`${spec.label}: no buffer for binding '${b.name}'`);
      const res = "buffer" in given ? given : { buffer: given };
      parts.push(`${this.idOf(res.buffer)}:${res.offset ?? 0}:${res.size ?? -1}`);
      entries.push({ binding: b.binding, resource: res });
    }
    const key = parts.join("|");
    let g = this.bindGroups.get(key);
    if (!g) {
      if (this.bindGroups.size >= BIND_GROUP_CACHE_LIMIT) this.bindGroups.clear();
      g = this.gpu.createBindGroup({ label: spec.label, layout, entries });
      this.bindGroups.set(key, g);
    }
    return g;
  }

  /**
   * Runs `record` `runs` times, one submit each, and returns each run's GPU time in ms.
   * Pipelines must be prepared; the first run is not discarded here (callers warm up).
   */
  async time(record: (rec: DispatchRecorder) => void, runs: number, maxPasses = 64): Promise<{ method: TimingMethod; ms: number[] }> {
    const ms: number[] = [];
    if (this.hasTimestamps) {
      const timer = new PassTimer(this.gpu, maxPasses);
      try {
        for (let i = 0; i < runs; i++) {
          const rec = this.recorder("timed", timer);
          record(rec);
          const passes = rec.passes;
          rec.submit();
          const ns = await timer.read(passes);
          this.checkErrors();
          ms.push(ns.reduce((a, b) => a + b, 0) / 1e6);
        }
      } finally {
        timer.destroy();
      }
      return { method: "timestamp", ms };
    }
    for (let i = 0; i < runs; i++) {
      const rec = this.recorder("timed");
      record(rec);
      const t0 = performance.now();
      rec.submit();
      await this.gpu.queue.onSubmittedWorkDone();
      ms.push(performance.now() - t0);
      this.checkErrors();
    }
    return { method: "wallclock", ms };
  }

  destroy(): void {
    this.destroying = true;
    this.bindGroups.clear();
    this.gpu.destroy();
    this.releasePacing();
  }

  /** The Dawn instance this device came from. */
  get gpuInstance(): GPU {
    return this.instance;
  }

  private idOf(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(b, id);
    }
    return id;
  }
}
