// Reading a floating-point tensor straight into the precision a program stores it in (f32, or f16
// bits), a bounded chunk of the file at a time: host memory holds the result plus one chunk, never
// the raw tensor beside a widened copy. A 65024 x 4096 bf16 embedding (532 MB) read as f16 peaks
// near 532 MB + CHUNK instead of 532 + 1064 (f32) + 532 MB.

import { open } from "node:fs/promises";
import { dtypeSize, numel } from "./dtypes.js";
import { f32BitsToF16, f16BitsToF32Bits } from "./half.js";
import type { TensorInfo } from "./safetensors.js";
import { CheckpointError } from "./torch-errors.js";

/** Bytes read per call; a multiple of 8 so no element straddles two chunks. */
const CHUNK = 16 << 20;

export type Target = "f32" | "f16";

/** `info`'s elements converted to `target`; `info` must be contiguous (no view) and F32, F16 or BF16. */
export async function readConverted(info: TensorInfo, target: "f32"): Promise<Float32Array>;
export async function readConverted(info: TensorInfo, target: "f16"): Promise<Uint16Array>;
export async function readConverted(info: TensorInfo, target: Target): Promise<Float32Array | Uint16Array> {
  const n = numel(info.shape);
  const size = dtypeSize(info.dtype);
  const out = target === "f32" ? new Float32Array(n) : new Uint16Array(n);
  const outBits = target === "f32" ? new Uint32Array(out.buffer) : (out as Uint16Array);
  const sameBits = (info.dtype === "F32" && target === "f32") || (info.dtype === "F16" && target === "f16");
  const fh = await open(info.file, "r");
  try {
    const chunk = sameBits ? undefined : new Uint8Array(Math.min(CHUNK, n * size));
    for (let at = 0; at < n * size; ) {
      const len = Math.min(CHUNK, n * size - at);
      // Same element type: read straight into the result.
      const dst = chunk ?? new Uint8Array(out.buffer, at, len);
      const { bytesRead } = await fh.read(dst, 0, len, info.start + at);
      if (bytesRead !== len) {
        throw new CheckpointError("truncated", `${info.file}: truncated: tensor '${info.name}' needs bytes ${info.start}..${info.end} but the file ends at ${info.start + at + bytesRead}`, { file: info.file, tensor: info.name });
      }
      if (chunk) convert(info.dtype, target, chunk.subarray(0, len), outBits, at / size);
      at += len;
    }
  } finally {
    await fh.close();
  }
  return out;
}

let bf16ToF16Table: Uint16Array | undefined;

/** bf16 has 65536 values: their f16 roundings, computed once. */
function bf16ToF16(): Uint16Array {
  if (!bf16ToF16Table) {
    bf16ToF16Table = new Uint16Array(65536);
    for (let b = 0; b < 65536; b++) bf16ToF16Table[b] = f32BitsToF16(b << 16);
  }
  return bf16ToF16Table;
}

function convert(dtype: string, target: Target, src: Uint8Array, out: Uint32Array | Uint16Array, first: number): void {
  const m = src.byteLength / dtypeSize(dtype as "F32");
  if (dtype === "BF16") {
    const s = new Uint16Array(src.buffer, src.byteOffset, m);
    if (target === "f32") for (let i = 0; i < m; i++) out[first + i] = s[i]! << 16;
    else {
      const t = bf16ToF16();
      for (let i = 0; i < m; i++) out[first + i] = t[s[i]!]!;
    }
  } else if (dtype === "F16") {
    const s = new Uint16Array(src.buffer, src.byteOffset, m);
    for (let i = 0; i < m; i++) out[first + i] = f16BitsToF32Bits(s[i]!);
  } else if (dtype === "F32") {
    const s = new Uint32Array(src.buffer, src.byteOffset, m);
    for (let i = 0; i < m; i++) out[first + i] = f32BitsToF16(s[i]!);
  } else {
    throw new Error(`readConverted: ${dtype} is not F32, F16 or BF16`);
  }
}
