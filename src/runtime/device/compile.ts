// Compiling a program's kernels before its first step, in parallel where the driver allows it.
//
// GPU drivers compile in createComputePipelineAsync, so requesting every pipeline at once is all
// it takes. llvmpipe (Mesa's CPU adapter, through lavapipe) JIT-compiles a shader only on its first
// dispatch, on the device's one queue thread: a program's kernels would compile one after the other
// during the first step (tens of seconds for a small model). So on CPU adapters each kernel is
// dispatched once, on one workgroup over scratch buffers, from a shared queue drained by the main
// device and by helper devices, each with its own queue thread. What a helper compiles lands in
// Mesa's shader cache on disk, where the main device's first real dispatch finds it; without a disk
// cache (MESA_SHADER_CACHE_DISABLE) a helper's work would be lost, so then the main device compiles
// everything itself.

import { availableParallelism } from "node:os";
import type { KernelBinding, KernelSpec } from "../../codegen/wgsl/kernel.js";
import { REQUESTED_LIMITS } from "./adapter-info.js";
import type { Device } from "./device.js";
import { PipelineCache } from "./pipelines.js";
import { mesaDiskCacheEnabled } from "./shader-cache.js";

export interface CompileOptions {
  /** Called as kernels finish compiling: done of total (distinct kernels). */
  progress?: (done: number, total: number) => void;
  /** Helper devices on CPU adapters; default: one per further core, at most 3 (0 turns them off). */
  helpers?: number;
}

export interface CompileReport {
  kernels: number;
  /** Devices opened to compile (1 = the main device alone). */
  devices: number;
  ms: number;
}

/** Bytes of each scratch buffer a warm-up dispatch binds: WebGPU's default uniform binding limit. */
const SCRATCH_BYTES = 1 << 16;

/** One helper per further core, at most 3; PEFC_COMPILE_HELPERS=n overrides (0: the main device alone). */
export function defaultHelpers(env: NodeJS.ProcessEnv = process.env): number {
  const set = Number(env["PEFC_COMPILE_HELPERS"]);
  if (env["PEFC_COMPILE_HELPERS"] && Number.isInteger(set) && set >= 0) return Math.min(set, 15);
  return Math.max(0, Math.min(3, availableParallelism() - 1));
}

/** Distinct kernels of `specs` (same WGSL and entry point: one pipeline). */
export function distinctKernels(specs: readonly KernelSpec[]): KernelSpec[] {
  const seen = new Map<string, KernelSpec>();
  for (const s of specs) {
    const k = PipelineCache.key(s);
    if (!seen.has(k)) seen.set(k, s);
  }
  return [...seen.values()];
}

export async function compileKernels(dev: Device, specs: readonly KernelSpec[], o: CompileOptions = {}): Promise<CompileReport> {
  const t0 = performance.now();
  const kernels = distinctKernels(specs);
  const total = kernels.length;
  let done = 0;
  const tick = () => o.progress?.(++done, total);
  o.progress?.(0, total);
  if (!dev.caps.isCpu) {
    await Promise.all(kernels.map((k) => dev.pipelines.prepare(k).then(tick)));
    dev.checkErrors();
    return { kernels: total, devices: 1, ms: performance.now() - t0 };
  }
  await dev.prepare(...kernels);
  const queue = [...kernels];
  const drain = async (w: Warmer) => {
    for (let k = queue.shift(); k; k = queue.shift()) {
      await w.warm(k);
      tick();
    }
  };
  // The main device starts at once and each helper joins when it is open (a few hundred ms): a
  // run whose kernels are all in Mesa's cache already is held up by no more than that opening.
  const wanted = mesaDiskCacheEnabled() ? Math.min(o.helpers ?? defaultHelpers(), Math.floor(total / 4)) : 0;
  const helpers: GPUDevice[] = [];
  const main = new Warmer(dev.gpu, dev.pipelines);
  try {
    const joining = Array.from({ length: wanted }, async (_, i) => {
      const h = await openHelper(dev, i);
      if (!h) return;
      helpers.push(h);
      if (queue.length > 0) await drain(new Warmer(h, new PipelineCache(h)));
    });
    await Promise.all([drain(main), ...joining]);
  } finally {
    main.destroy();
    for (const h of helpers) h.destroy();
  }
  dev.checkErrors();
  return { kernels: total, devices: 1 + helpers.length, ms: performance.now() - t0 };
}

/** A further device on the main device's adapter, with its features and limits; undefined if that fails. */
async function openHelper(dev: Device, i: number): Promise<GPUDevice | undefined> {
  try {
    const adapter = await dev.gpuInstance.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return undefined;
    const requiredLimits: Record<string, number> = {};
    for (const l of REQUESTED_LIMITS) requiredLimits[l] = adapter.limits[l];
    const requiredFeatures = dev.info.features.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    return await adapter.requestDevice({ requiredFeatures, requiredLimits, label: `pefc compile ${i + 1}` });
  } catch {
    return undefined; // compiling on fewer devices is only slower
  }
}

/** Dispatches each kernel once on one workgroup, so the driver compiles it now. */
class Warmer {
  private readonly scratch: GPUBuffer[] = [];

  constructor(
    private readonly gpu: GPUDevice,
    private readonly pipelines: PipelineCache,
  ) {}

  private buffer(i: number): GPUBuffer {
    while (this.scratch.length <= i)
      this.scratch.push(this.gpu.createBuffer({ size: SCRATCH_BYTES, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM, label: "compile scratch" }));
    return this.scratch[i]!;
  }

  async warm(spec: KernelSpec): Promise<void> {
    const { pipeline, layout } = await this.pipelines.prepare(spec);
    const entries = spec.bindings.map((b: KernelBinding, i) => ({ binding: b.binding, resource: { buffer: this.buffer(i) } }));
    const enc = this.gpu.createCommandEncoder({ label: `compile ${spec.label}` });
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.gpu.createBindGroup({ layout, entries }));
    pass.dispatchWorkgroups(1, 1, 1);
    pass.end();
    this.gpu.queue.submit([enc.finish()]);
    await this.gpu.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    for (const b of this.scratch) b.destroy();
  }
}
