// The device's arithmetic ceiling for f32 multiply-adds held in registers, so matmul GFLOP/s can
// be read against what the device can do at all (llvmpipe's ceiling depends on the host's cores
// and SIMD). Scalar chains, one lane's worth each: on llvmpipe a vec4 is four SIMD registers
// anyway, and every loop-carried value costs a masked blend per iteration, so each chain takes
// several dependent steps per iteration to keep that blend off the measured rate.
import type { KernelSpec } from "../src/codegen/wgsl/kernel.js";
import { median, type Device } from "../src/runtime/device/index.js";

export async function aluCeiling(dev: Device): Promise<number> {
  const WG = 64;
  const GROUPS = 256;
  const ITERS = 512;
  const STEPS = 8;
  const chains = [...Array(16).keys()];
  const step = chains.map((i) => `a${i} = fma(a${i}, m, s);`).join(" ");
  const wgsl = `@group(0) @binding(0) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${chains.map((i) => `var a${i} = f32(gid.x) * 1e-6 + ${i}.0 * 0.1;`).join("\n  ")}
  let m = 0.999;
  let s = 0.001;
  for (var i = 0u; i < ${ITERS}u; i++) {
    ${Array(STEPS).fill(step).join("\n    ")}
  }
  c[gid.x] = ${chains.map((i) => `a${i}`).join(" + ")};
}`;
  const spec: KernelSpec = {
    label: "alu_ceiling", wgsl, entryPoint: "main", workgroupSize: [WG, 1, 1], dispatch: [GROUPS, 1, 1],
    bindings: [{ binding: 0, name: "c", access: "read_write", type: "array<f32>", elem: "f32" }],
    flops: WG * GROUPS * ITERS * STEPS * chains.length * 2,
  };
  await dev.prepare(spec);
  const bufs = { c: dev.bufferFrom(new Float32Array(WG * GROUPS)) };
  const reps = 4;
  const record = (r: { dispatch: (s: KernelSpec, b: typeof bufs) => void }) => {
    for (let i = 0; i < reps; i++) r.dispatch(spec, bufs);
  };
  await dev.time(record, 1);
  const t = await dev.time(record, 5);
  bufs.c.destroy();
  return (spec.flops * reps) / (median(t.ms) * 1e6);
}
