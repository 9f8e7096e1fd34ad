// Compiling a program's kernels before its first step: distinct kernels once each, progress from
// 0 to total, helper devices on CPU adapters, and kernels that then run right on the main device.
// Also where Mesa's shader cache is kept.

import { beforeAll, describe, expect, it } from "vitest";
import type { KernelSpec } from "../../src/codegen/wgsl/index.js";
import { compileKernels, distinctKernels, keepMesaCacheWithPefc, mesaDiskCacheEnabled, spareLlvmpipeWorkers, type Device } from "../../src/runtime/device/index.js";
import { testDevice } from "./helpers.js";

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

/** y[i] = x[i] * k + i over n values: distinct WGSL for each (k, n). */
function scaleKernel(k: number, n: number): KernelSpec {
  const wgsl = `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < ${n}u) { y[g.x] = x[g.x] * ${k.toFixed(1)} + f32(g.x); }
}`;
  return {
    label: `scale_${k}_${n}`, wgsl, entryPoint: "main", workgroupSize: [64, 1, 1], dispatch: [Math.ceil(n / 64), 1, 1], flops: 2 * n,
    bindings: [
      { binding: 0, name: "x", access: "read", type: "array<f32>", elem: "f32" },
      { binding: 1, name: "y", access: "read_write", type: "array<f32>", elem: "f32" },
    ],
  };
}

describe("compileKernels", () => {
  const n = 77;
  const specs = [2, 3, 5, 7, 11, 13, 17, 19].map((k) => scaleKernel(k, n));
  // The same WGSL under another label is the same pipeline.
  const all = [...specs, { ...specs[0]!, label: "again" }];

  it("counts each distinct kernel once", () => {
    expect(distinctKernels(all)).toHaveLength(specs.length);
  });

  for (const helpers of [0, 1]) {
    it(`compiles with ${helpers} helper device(s), reports 0..total in order, and the kernels run`, async () => {
      const seen: [number, number][] = [];
      const r = await compileKernels(dev, all, { helpers, progress: (d, t) => seen.push([d, t]) });
      expect(r.kernels).toBe(specs.length);
      expect(seen.map(([d]) => d)).toEqual(Array.from({ length: specs.length + 1 }, (_, i) => i));
      expect(seen.every(([, t]) => t === specs.length)).toBe(true);
      if (dev.caps.isCpu && mesaDiskCacheEnabled() && helpers > 0) expect(r.devices).toBe(1 + helpers);
      else expect(r.devices).toBe(1);
      const x = Float32Array.from({ length: n }, (_, i) => (i % 9) - 4);
      for (const [j, k] of [2, 19].entries()) {
        const spec = specs[j === 0 ? 0 : specs.length - 1]!;
        const bufs = { x: dev.bufferFrom(x), y: dev.bufferFrom(new Float32Array(n)) };
        const rec = dev.recorder("check");
        rec.dispatch(spec, bufs);
        rec.submit();
        const got = await dev.readF32(bufs.y, n);
        expect(Array.from(got)).toEqual(Array.from(x, (v, i) => Math.fround(v * k + i)));
        bufs.x.destroy();
        bufs.y.destroy();
      }
    });
  }
});

describe("Mesa's shader cache folder", () => {
  it("goes under pefc's cache folder unless the user chose one or switched the cache off", () => {
    const env: NodeJS.ProcessEnv = { XDG_CACHE_HOME: "/tmp/pefc-test-cache-home" };
    expect(keepMesaCacheWithPefc(env)).toBe("/tmp/pefc-test-cache-home/pefc/mesa");
    expect(env["MESA_SHADER_CACHE_DIR"]).toBe("/tmp/pefc-test-cache-home/pefc/mesa");
    const mine: NodeJS.ProcessEnv = { XDG_CACHE_HOME: "/tmp/x", MESA_SHADER_CACHE_DIR: "/elsewhere" };
    expect(keepMesaCacheWithPefc(mine)).toBeUndefined();
    expect(mine["MESA_SHADER_CACHE_DIR"]).toBe("/elsewhere");
    for (const v of ["true", "1", "YES"]) {
      const off: NodeJS.ProcessEnv = { MESA_SHADER_CACHE_DISABLE: v };
      expect(mesaDiskCacheEnabled(off)).toBe(false);
      expect(keepMesaCacheWithPefc(off)).toBeUndefined();
      expect(off["MESA_SHADER_CACHE_DIR"]).toBeUndefined();
    }
    expect(mesaDiskCacheEnabled({ MESA_SHADER_CACHE_DISABLE: "false" })).toBe(true);
  });
});

describe("llvmpipe's workers", () => {
  it("are twice the cores (at most 32) unless the user set LP_NUM_THREADS", () => {
    const env: NodeJS.ProcessEnv = {};
    expect(spareLlvmpipeWorkers(env, 2)).toBe("4");
    expect(env["LP_NUM_THREADS"]).toBe("4");
    expect(spareLlvmpipeWorkers({}, 64)).toBe("32");
    const mine: NodeJS.ProcessEnv = { LP_NUM_THREADS: "3" };
    expect(spareLlvmpipeWorkers(mine, 2)).toBe("3");
    expect(mine["LP_NUM_THREADS"]).toBe("3");
    // This process's device was opened with the value in force.
    expect(Number(process.env["LP_NUM_THREADS"])).toBeGreaterThan(0);
  });
});
