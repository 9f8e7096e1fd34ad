// Pipelines are created once per (WGSL source, entry point): a first use JIT-compiles the shader
// (150-900 ms on llvmpipe), so the cache is what keeps a training step free of compiles. Layouts
// are explicit, built from the kernel's binding list, so bindings a shader leaves unused still bind.

import type { KernelBinding, KernelSpec } from "../../codegen/wgsl/kernel.js";

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  key: string;
}

export class PipelineCache {
  private readonly ready = new Map<string, CachedPipeline>();
  private readonly pending = new Map<string, Promise<CachedPipeline>>();
  private readonly bySpec = new WeakMap<KernelSpec, { wgsl: string; entryPoint: string; hit: CachedPipeline }>();

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.ready.size;
  }

  static key(spec: Pick<KernelSpec, "wgsl" | "entryPoint">): string {
    return `${spec.entryPoint}\n${spec.wgsl}`;
  }

  /** Compiles in the background; throws an Error with the WGSL compiler's messages on failure. */
  async prepare(spec: KernelSpec): Promise<CachedPipeline> {
    const key = PipelineCache.key(spec);
    const hit = this.ready.get(key);
    if (hit) return hit;
    let p = this.pending.get(key);
    if (!p) {
      p = this.build(spec, key);
      this.pending.set(key, p);
    }
    try {
      return await p;
    } finally {
      this.pending.delete(key);
    }
  }

  /** The pipeline if prepare() finished; recorders need them ready. */
  get(spec: KernelSpec): CachedPipeline {
    // Recording looks up every dispatch's pipeline: by the spec object once it has been found,
    // since building the key joins the whole WGSL source (2 ms of a 70 ms step's host time).
    const seen = this.bySpec.get(spec);
    if (seen && seen.wgsl === spec.wgsl && seen.entryPoint === spec.entryPoint) return seen.hit;
    const hit = this.ready.get(PipelineCache.key(spec));
    if (!hit) throw new Error(`pipeline for ${spec.label} used before prepare()`);
    this.bySpec.set(spec, { wgsl: spec.wgsl, entryPoint: spec.entryPoint, hit });
    return hit;
  }

  private async build(spec: KernelSpec, key: string): Promise<CachedPipeline> {
    const d = this.device;
    d.pushErrorScope("validation");
    const module = d.createShaderModule({ code: spec.wgsl, label: spec.label });
    const info = await module.getCompilationInfo();
    const scoped = await d.popErrorScope();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length || scoped) {
      const lines = spec.wgsl.split("\n");
      const text = errors.map((m) => `  ${m.lineNum}:${m.linePos}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ""}`);
      throw new Error(`WGSL for ${spec.label} does not compile:\n${text.join("\n") || scoped?.message}`);
    }
    const layout = d.createBindGroupLayout({ label: spec.label, entries: spec.bindings.map(layoutEntry) });
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await d.createComputePipelineAsync({
        label: spec.label,
        layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: spec.entryPoint },
      });
    } catch (e) {
      throw new Error(`pipeline ${spec.label}: ${(e as Error).message}`);
    }
    const entry = { pipeline, layout, key };
    this.ready.set(key, entry);
    return entry;
  }
}

function layoutEntry(b: KernelBinding): GPUBindGroupLayoutEntry {
  const type: GPUBufferBindingType = b.access === "uniform" ? "uniform" : b.access === "read" ? "read-only-storage" : "storage";
  return { binding: b.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } };
}
