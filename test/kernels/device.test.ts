// The device layer: the P801 message when Dawn finds no adapter, adapter facts, device errors
// surfacing as thrown Errors with the WGSL compiler's text, the pipeline cache, timing, and the
// per-device kernel choice with its on-disk cache.

import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { KernelSpec } from "../../src/codegen/wgsl/index.js";
import {
  chooseMatmulVariant,
  defaultKernelCacheFile,
  LLVMPIPE_INSTALL_COMMANDS,
  openDevice,
  readChoice,
  writeChoice,
  type Device,
} from "../../src/runtime/device/index.js";
import { UserError } from "../../src/runtime/io/errors.js";
import { testDevice } from "./helpers.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

const COPY: KernelSpec = {
  label: "copy_scaled",
  wgsl: `@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < arrayLength(&src)) { dst[g.x] = 2.0 * src[g.x]; }
}
`,
  entryPoint: "main",
  workgroupSize: [64, 1, 1],
  dispatch: [2, 1, 1],
  bindings: [
    { binding: 0, name: "src", access: "read", type: "array<f32>", elem: "f32" },
    { binding: 1, name: "dst", access: "read_write", type: "array<f32>", elem: "f32" },
  ],
  flops: 100,
};

describe("openDevice", () => {
  it("fails with P801 and the llvmpipe install commands when Dawn finds no adapter", async () => {
    // No D3D12 backend exists on Linux, so this instance has no adapter at all.
    expect(process.platform).toBe("linux");
    const err = await openDevice({ flags: ["backend=d3d12"] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg.startsWith("P801: no WebGPU adapter: ")).toBe(true);
    expect(msg).toContain("llvmpipe");
    for (const c of LLVMPIPE_INSTALL_COMMANDS) expect(msg).toContain(c);
  });

  it("reports the adapter, its features and limits, and derives the codegen caps from them", () => {
    const { adapter, features, limits, caps, key } = dev.info;
    expect(adapter.description.length).toBeGreaterThan(0);
    expect(key).toContain(adapter.description);
    expect(caps.f16).toBe(features.includes("shader-f16"));
    expect(caps.maxWorkgroupStorageBytes).toBe(limits["maxComputeWorkgroupStorageSize"]);
    expect(caps.maxStorageBindingBytes).toBe(dev.gpu.limits.maxStorageBufferBindingSize);
    expect(caps.maxStorageBindingBytes).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(dev.info.flags.join(" ")).toContain("disable-dawn-features=timestamp_quantization");
  });
});

describe("device plumbing", () => {
  it("uploads, dispatches and reads back, creating each pipeline once", async () => {
    const src = Float32Array.from({ length: 100 }, (_, i) => i - 50.5);
    await dev.prepare(COPY);
    const before = dev.pipelines.size;
    await dev.prepare({ ...COPY });
    expect(dev.pipelines.size).toBe(before);
    const a = dev.bufferFrom(src);
    const b = dev.createBuffer(4 * 100);
    const rec = dev.recorder("copy");
    rec.dispatch(COPY, { src: a, dst: b });
    rec.dispatch(COPY, { src: a, dst: b });
    expect(rec.dispatches).toBe(2);
    expect(rec.passes).toBe(1);
    rec.submit();
    const out = await dev.readF32(b, 100);
    expect(Array.from(out)).toEqual(Array.from(src, (v) => 2 * v));
  });

  it("finds a spec's pipeline again by its source, also when the same object's WGSL is changed", async () => {
    const spec = { ...COPY, label: "copy_tripled", wgsl: COPY.wgsl.replace("2.0 * src", "3.0 * src") };
    const other = { ...COPY, label: "copy_halved", wgsl: COPY.wgsl.replace("2.0 * src", "0.5 * src") };
    await dev.prepare(spec, other);
    const first = dev.pipelineFor(spec);
    expect(dev.pipelineFor(spec)).toBe(first);
    expect(dev.pipelineFor({ ...spec })).toBe(first);
    spec.wgsl = other.wgsl;
    expect(dev.pipelineFor(spec)).toBe(dev.pipelineFor(other));
    expect(dev.pipelineFor(spec)).not.toBe(first);
    spec.wgsl = COPY.wgsl.replace("2.0 * src", "5.0 * src");
    expect(() => dev.pipelineFor(spec)).toThrow(/used before prepare\(\)/);
  });

  it("uploads odd-length f16 data (pads to 4 bytes)", async () => {
    const h = Uint16Array.from([1, 2, 3]);
    const buf = dev.bufferFrom(h);
    expect(new Uint16Array(await dev.read(buf, 6))).toEqual(h);
  });

  it("throws the WGSL compiler's message, with the line, for a shader that does not compile", async () => {
    const bad = { ...COPY, label: "broken", wgsl: COPY.wgsl.replace("2.0 * src[g.x]", "2.0 * undefined_thing") };
    await expect(dev.prepare(bad)).rejects.toThrow(/WGSL for broken does not compile:[\s\S]*undefined_thing/);
  });

  it("turns an uncaptured validation error into a thrown Error at the next sync point", async () => {
    await dev.prepare(COPY);
    const src = dev.createBuffer(400);
    const tooSmall = dev.createBuffer(400, "x", GPUBufferUsage.COPY_DST); // no STORAGE usage
    const rec = dev.recorder("invalid");
    rec.dispatch(COPY, { src, dst: tooSmall });
    rec.submit();
    await expect(dev.flush()).rejects.toThrow(/WebGPU error/);
    await dev.flush(); // the error is reported once
  });

  it("names a missing binding", () => {
    const rec = dev.recorder("missing");
    expect(() => rec.dispatch(COPY, { src: dev.createBuffer(4) })).toThrow(/no buffer for binding 'dst'/);
    rec.finish();
  });

  it("times recorded work", async () => {
    const a = dev.bufferFrom(new Float32Array(100));
    const b = dev.createBuffer(400);
    const t = await dev.time((rec) => rec.dispatch(COPY, { src: a, dst: b }), 2);
    expect(t.method).toBe(dev.hasTimestamps ? "timestamp" : "wallclock");
    expect(t.ms).toHaveLength(2);
    for (const ms of t.ms) expect(ms).toBeGreaterThan(0);
  });
});

describe("matmul variant choice", () => {
  it("honours XDG_CACHE_HOME for the cache path", () => {
    expect(defaultKernelCacheFile({ XDG_CACHE_HOME: "/x/cache" })).toBe("/x/cache/pefc/kernels.json");
    expect(defaultKernelCacheFile({ HOME: "/h" })).toMatch(/\.cache\/pefc\/kernels\.json$/);
  });

  it("measures once, writes the choice to the cache file, and reads it back from there", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pefc-kc-"));
    const cacheFile = join(dir, "sub", "kernels.json");
    const c = await chooseMatmulVariant(dev, { cacheFile, memo: false, remeasure: true });
    expect(c.source).toBe("measured");
    expect(Object.keys(c.gflops).sort()).toEqual(["register", "tiled"]);
    expect(c.gflops[c.variant]).toBe(Math.max(...Object.values(c.gflops)));
    const stored = JSON.parse(await readFile(cacheFile, "utf8")) as { devices: Record<string, { matmul: { variant: string } }> };
    expect(stored.devices[dev.info.key]!.matmul.variant).toBe(c.variant);

    // A cached entry wins over measuring: plant the other variant and it comes back.
    const other = c.variant === "register" ? "tiled" : "register";
    await writeChoice(cacheFile, dev.info.key, "matmul", { ...c, variant: other });
    const again = await chooseMatmulVariant(dev, { cacheFile, memo: false });
    expect(again.source).toBe("cache");
    expect(again.variant).toBe(other);
  });

  it("never fails when the cache is unreadable or unwritable", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pefc-kc-"));
    const corrupt = join(dir, "kernels.json");
    await writeFile(corrupt, "{ not json");
    expect(await readChoice(corrupt, dev.info.key, "matmul")).toBeUndefined();
    const blocked = join(corrupt, "below-a-file", "kernels.json");
    expect(await writeChoice(blocked, dev.info.key, "matmul", { variant: "tiled", gflops: {}, shape: "1x1x1", at: "" })).toBe(false);
    const c = await chooseMatmulVariant(dev, { cacheFile: blocked, memo: false, remeasure: true, candidates: ["register"] });
    expect(c.variant).toBe("register");
  });
});
