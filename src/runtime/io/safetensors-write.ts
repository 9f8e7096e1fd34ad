// Writing safetensors byte-for-byte as the reference implementation (Python `safetensors`, which
// PyTorch and PEFT use) does: tensors ordered by descending dtype alignment then by name (byte
// order), data laid out contiguously in that order, compact JSON header with "__metadata__" first,
// padded with spaces to a multiple of 8 bytes so every tensor starts aligned. The file is written
// atomically. Metadata keys are sorted (the reference leaves their order to a hash map).

import { DTYPES, numel, type Dtype } from "./dtypes.js";
import { f32ArrayToBf16, f32ArrayToF16 } from "./half.js";
import { writeFileAtomic } from "./atomic.js";

export type WritableDtype = Extract<Dtype, "F32" | "F16" | "BF16" | "I64" | "I32" | "U8" | "BOOL">;

export interface TensorToWrite {
  name: string;
  dtype: WritableDtype;
  shape: readonly number[];
  /**
   * F32: Float32Array | number[]. F16/BF16: Uint16Array of raw bits, or Float32Array | number[]
   * rounded to nearest even. I32: Int32Array | number[]. I64: BigInt64Array | number[] | bigint[].
   * U8/BOOL: Uint8Array | number[] | boolean[].
   */
  data: ArrayLike<number> | ArrayLike<bigint> | ArrayLike<boolean>;
}

/** The whole file as chunks: [length prefix + header, tensor bytes...] in file order. */
export function serializeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array[] {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === "" || t.name === "__metadata__") throw new Error(`safetensors: invalid tensor name '${t.name}'`);
    if (seen.has(t.name)) throw new Error(`safetensors: duplicate tensor name '${t.name}'`);
    seen.add(t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`safetensors: tensor '${t.name}' has invalid shape [${t.shape.join(", ")}]`);
    }
  }
  const ordered = [...tensors].sort(
    (a, b) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)),
  );
  const header: Record<string, unknown> = {};
  if (metadata) {
    const sorted: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort()) {
      const v = metadata[k];
      if (typeof v !== "string") throw new Error(`safetensors: metadata '${k}' must be a string`);
      sorted[k] = v;
    }
    header.__metadata__ = sorted;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of ordered) {
    const bytes = tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    chunks.push(bytes);
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return [head, ...chunks];
}

export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

function tensorBytes(t: TensorToWrite): Uint8Array {
  const n = numel(t.shape);
  if (t.data.length !== n) {
    throw new Error(`safetensors: tensor '${t.name}' has ${t.data.length} elements but shape [${t.shape.join(", ")}] needs ${n}`);
  }
  const d = t.data;
  switch (t.dtype) {
    case "F32":
      return bytesOf(d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>));
    case "F16":
    case "BF16": {
      if (d instanceof Uint16Array) return bytesOf(d);
      const f = d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
      return bytesOf(t.dtype === "F16" ? f32ArrayToF16(f) : f32ArrayToBf16(f));
    }
    case "I32":
      return bytesOf(d instanceof Int32Array ? d : Int32Array.from(d as ArrayLike<number>, checkedInt(t.name, 32)));
    case "I64":
      return bytesOf(d instanceof BigInt64Array ? d : BigInt64Array.from(d as ArrayLike<number | bigint>, (v) => toBigInt(t.name, v)));
    case "U8":
    case "BOOL":
      return bytesOf(d instanceof Uint8Array ? d : Uint8Array.from(d as ArrayLike<number | boolean>, checkedByte(t.name, t.dtype)));
  }
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function checkedInt(name: string, bits: number): (v: number) => number {
  const lim = 2 ** (bits - 1);
  return (v) => {
    if (!Number.isInteger(v) || v < -lim || v >= lim) throw new Error(`safetensors: tensor '${name}': ${v} is not an I${bits}`);
    return v;
  };
}

function toBigInt(name: string, v: number | bigint): bigint {
  if (typeof v === "bigint") return v;
  if (!Number.isSafeInteger(v)) throw new Error(`safetensors: tensor '${name}': ${v} is not a safe integer`);
  return BigInt(v);
}

function checkedByte(name: string, dtype: "U8" | "BOOL"): (v: number | boolean) => number {
  return (v) => {
    const x = typeof v === "boolean" ? Number(v) : v;
    const max = dtype === "BOOL" ? 1 : 255;
    if (!Number.isInteger(x) || x < 0 || x > max) throw new Error(`safetensors: tensor '${name}': ${String(v)} is not a ${dtype}`);
    return x;
  };
}
