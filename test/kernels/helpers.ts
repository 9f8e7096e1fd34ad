// Shared by the kernel tests: one device for the whole folder (opening fails the tests with the
// P801 message when there is no adapter: CI installs llvmpipe, so a missing driver is a failure,
// not a skip), seeded inputs, and the abs+rel comparison that prints the first mismatches.

import type { Lowered } from "../../src/codegen/wgsl/lower/types.js";
import { openDevice, type Device } from "../../src/runtime/device/index.js";
import type { KernelSpec } from "../../src/codegen/wgsl/index.js";
import { uniformFill } from "../../src/runtime/reference/rng.js";

let devicePromise: Promise<Device> | undefined;

export function testDevice(): Promise<Device> {
  devicePromise ??= openDevice();
  return devicePromise;
}

export function randomF32(n: number, seed: number): Float32Array {
  return uniformFill(new Float32Array(n), seed, 1, -1, 1);
}

export function toF64(x: Float32Array): Float64Array {
  return Float64Array.from(x);
}

/**
 * Elementwise |got - want| <= atol + rtol·|want| (or a per-element bound); throws listing the
 * first mismatches and the largest difference. Returns the largest difference.
 */
export function expectClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: { atol: number; rtol: number; bound?: ArrayLike<number> },
  cols = 1,
): number {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, expected ${want.length}`);
  const bad: string[] = [];
  let maxDiff = 0;
  let nBad = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const d = Math.abs(g - w);
    maxDiff = Math.max(maxDiff, Number.isNaN(d) ? Infinity : d);
    const limit = tol.atol + tol.rtol * Math.abs(w) + (tol.bound ? tol.bound[i]! : 0);
    if (!(d <= limit)) {
      nBad++;
      if (bad.length < 6) bad.push(`  [${Math.floor(i / cols)},${i % cols}] got ${g} want ${w} (diff ${d.toExponential(2)}, limit ${limit.toExponential(2)})`);
    }
  }
  if (nBad) throw new Error(`${what}: ${nBad} of ${want.length} values differ, max diff ${maxDiff.toExponential(3)}\n${bad.join("\n")}`);
  return maxDiff;
}

/** Uploads named inputs, zeroes (or fills) the output, runs one dispatch and reads the output. */
export async function runKernel(
  dev: Device,
  spec: KernelSpec,
  inputs: Record<string, ArrayBufferView>,
  output: { name: string; count: number; init?: Float32Array },
): Promise<Float32Array> {
  await dev.prepare(spec);
  const bufs: Record<string, GPUBuffer> = {};
  for (const [name, data] of Object.entries(inputs)) bufs[name] = dev.bufferFrom(data, name);
  // NaN marks any element a kernel forgets to write.
  bufs[output.name] = dev.bufferFrom(output.init ?? new Float32Array(output.count).fill(NaN), output.name);
  try {
    const rec = dev.recorder(spec.label);
    rec.dispatch(spec, bufs);
    rec.submit();
    return await dev.readF32(bufs[output.name]!, output.count);
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

/** f32 tolerance for sums of K products of values in [-1, 1]. */
export const F32_TOL = { atol: 1e-4, rtol: 1e-4 };

/** Runs every kernel of a lowering in order in one submit; outputs and scratch start as NaN. */
export async function runKernels(dev: Device, lowered: Lowered, inputs: Float32Array[], outCounts: number[]): Promise<Float32Array[]> {
  await dev.prepare(...lowered.kernels);
  const bufs: Record<string, GPUBuffer> = {};
  inputs.forEach((x, i) => (bufs[`in${i}`] = dev.bufferFrom(x, `in${i}`)));
  outCounts.forEach((n, i) => (bufs[`out${i}`] = dev.bufferFrom(new Float32Array(n).fill(NaN), `out${i}`)));
  (lowered.scratch ?? []).forEach((bytes, i) => (bufs[`tmp${i}`] = dev.bufferFrom(new Float32Array(bytes / 4).fill(NaN), `tmp${i}`)));
  try {
    const rec = dev.recorder("test");
    for (const k of lowered.kernels) rec.dispatch(k, bufs);
    rec.submit();
    return await Promise.all(outCounts.map((n, i) => dev.readF32(bufs[`out${i}`]!, n)));
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

/** Kernels with a per-device row variant, run both ways whatever the test device is. */
export const ROW_VARIANTS = [
  ["workgroup per row", { isCpu: false }],
  ["thread per row", { isCpu: true }],
] as const;
