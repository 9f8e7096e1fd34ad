// Records one step's work into one command encoder: dispatches go into the open compute pass
// (Dawn orders dependent dispatches inside a pass), copies close it. Pipelines must have been
// prepared; bind groups are cached per pipeline and buffer set.

import type { KernelSpec } from "../../codegen/wgsl/kernel.js";
import type { PassTimer } from "./timing.js";

export type BufferBinding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export interface RecorderHost {
  readonly gpu: GPUDevice;
  pipelineFor(spec: KernelSpec): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout; key: string };
  bindGroupFor(spec: KernelSpec, layout: GPUBindGroupLayout, pipelineKey: string, buffers: Record<string, BufferBinding>): GPUBindGroup;
}

export class DispatchRecorder {
  readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | undefined;
  private finished = false;
  passes = 0;
  dispatches = 0;

  constructor(
    private readonly host: RecorderHost,
    readonly label = "step",
    private readonly timer?: PassTimer,
  ) {
    this.encoder = host.gpu.createCommandEncoder({ label });
  }

  dispatch(spec: KernelSpec, buffers: Record<string, BufferBinding>, grid: readonly [number, number, number] = spec.dispatch): void {
    const { pipeline, layout, key } = this.host.pipelineFor(spec);
    const group = this.host.bindGroupFor(spec, layout, key, buffers);
    const pass = this.openPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    this.dispatches++;
  }

  /** Ends the open compute pass, so the next dispatch starts a new one. */
  endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
  }

  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    this.endPass();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  finish(): GPUCommandBuffer {
    if (this.finished) throw new Error(`recorder ${this.label} finished twice`);
    this.finished = true;
    this.endPass();
    this.timer?.resolve(this.encoder, this.passes);
    return this.encoder.finish();
  }

  submit(): void {
    this.host.gpu.queue.submit([this.finish()]);
  }

  private openPass(): GPUComputePassEncoder {
    if (this.finished) throw new Error(`recorder ${this.label} already finished`);
    if (!this.pass) {
      const desc: GPUComputePassDescriptor = { label: `${this.label}#${this.passes}` };
      if (this.timer) desc.timestampWrites = this.timer.writesFor(this.passes);
      this.pass = this.encoder.beginComputePass(desc);
      this.passes++;
    }
    return this.pass;
  }
}
