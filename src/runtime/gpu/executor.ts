/**
 * A Program on a device: its buffers created once, its pipelines compiled once (Device.prepare
 * caches them), one bind group per dispatch made once (buffers never move), and command lists
 * recorded into a caller's encoder. Dispatches share one compute pass until a copy ends it.
 */
import type { Command, DispatchCmd, Program, Slice } from "../../codegen/wgsl/program/index.js";
import { compileKernels, type Device, type PassTimer } from "../device/index.js";

/**
 * Per-dispatch timing (the profile): every dispatch in a pass of its own with timestamp writes,
 * and which command each pass ran. Separate passes cost a little more than a shared one, so a
 * profiled step is somewhat slower than a plain one.
 */
export interface DispatchTiming {
  timer: PassTimer;
  commands: DispatchCmd[];
}

export class ProgramExecutor {
  readonly buffers: GPUBuffer[];
  private readonly groups = new Map<Command, GPUBindGroup>();

  private constructor(
    readonly dev: Device,
    readonly program: Program,
  ) {
    this.buffers = program.buffers.map((b) => dev.createBuffer(b.bytes, `${b.role}:${b.label}`));
  }

  /**
   * Creates the buffers and compiles every kernel, all requested at once (and on CPU adapters
   * dispatched once each, spread over helper devices: see device/compile.ts).
   */
  static async create(dev: Device, program: Program, compiling?: (done: number, total: number) => void): Promise<ProgramExecutor> {
    const ex = new ProgramExecutor(dev, program);
    await compileKernels(dev, program.kernels, compiling ? { progress: compiling } : {});
    return ex;
  }

  buffer(s: Slice): GPUBuffer {
    return this.buffers[s.buffer]!;
  }

  /** Records `commands` into `enc`, in order. */
  record(enc: GPUCommandEncoder, commands: readonly Command[], label: string, timing?: DispatchTiming): number {
    let pass: GPUComputePassEncoder | undefined;
    let dispatches = 0;
    for (const c of commands) {
      if (c.kind === "copy") {
        pass?.end();
        pass = undefined;
        enc.copyBufferToBuffer(this.buffers[c.src.buffer]!, c.src.offset, this.buffers[c.dst.buffer]!, c.dst.offset, c.src.bytes);
        continue;
      }
      const spec = this.program.kernels[c.kernel]!;
      const { pipeline, layout } = this.dev.pipelineFor(spec);
      let group = this.groups.get(c);
      if (!group) {
        group = this.dev.gpu.createBindGroup({
          label: c.label,
          layout,
          entries: spec.bindings.map((b) => {
            const s = c.bindings[b.name]!;
            return { binding: b.binding, resource: { buffer: this.buffers[s.buffer]!, offset: s.offset, size: s.bytes } };
          }),
        });
        this.groups.set(c, group);
      }
      if (timing) {
        pass?.end();
        pass = enc.beginComputePass({ label, timestampWrites: timing.timer.writesFor(timing.commands.length) });
        timing.commands.push(c);
      }
      pass ??= enc.beginComputePass({ label });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...c.workgroups);
      dispatches++;
    }
    pass?.end();
    return dispatches;
  }

  write(s: Slice, data: ArrayBufferView, offsetBytes = 0): void {
    this.dev.upload(this.buffers[s.buffer]!, data, s.offset + offsetBytes);
  }

  async read(s: Slice): Promise<ArrayBuffer> {
    return this.dev.read(this.buffers[s.buffer]!, s.bytes, s.offset);
  }

  /** Reads several slices with one staging buffer and one map. */
  async readMany(slices: readonly Slice[]): Promise<ArrayBuffer[]> {
    return this.dev.readRanges(slices.map((s) => ({ buffer: this.buffers[s.buffer]!, offset: s.offset, bytes: s.bytes })));
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
    this.groups.clear();
  }
}
