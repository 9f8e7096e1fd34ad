// The safetensors element types. `rank` is the position in the format's own dtype enum, which is
// ordered by alignment; writers lay tensors out by descending rank, then by name, so every tensor
// starts aligned to its element size.

export type Dtype =
  | "BOOL"
  | "U8"
  | "I8"
  | "F8_E5M2"
  | "F8_E4M3"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "F64"
  | "I64"
  | "U64";

interface DtypeInfo {
  size: number;
  rank: number;
}

export const DTYPES: Readonly<Record<Dtype, DtypeInfo>> = {
  BOOL: { size: 1, rank: 0 },
  U8: { size: 1, rank: 1 },
  I8: { size: 1, rank: 2 },
  F8_E5M2: { size: 1, rank: 3 },
  F8_E4M3: { size: 1, rank: 4 },
  I16: { size: 2, rank: 5 },
  U16: { size: 2, rank: 6 },
  F16: { size: 2, rank: 7 },
  BF16: { size: 2, rank: 8 },
  I32: { size: 4, rank: 9 },
  U32: { size: 4, rank: 10 },
  F32: { size: 4, rank: 11 },
  F64: { size: 8, rank: 12 },
  I64: { size: 8, rank: 13 },
  U64: { size: 8, rank: 14 },
};

export function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

export function dtypeSize(d: Dtype): number {
  return DTYPES[d].size;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** The natural typed array for each dtype's raw elements (halves as their bits). */
export type RawArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** Views little-endian bytes as the dtype's typed array; `bytes` must start 8-byte aligned. */
export function viewAs(dtype: Dtype, bytes: Uint8Array): RawArray {
  const { buffer, byteOffset } = bytes;
  const n = bytes.byteLength / dtypeSize(dtype);
  switch (dtype) {
    case "BOOL":
    case "U8":
    case "F8_E5M2":
    case "F8_E4M3":
      return bytes;
    case "I8":
      return new Int8Array(buffer, byteOffset, n);
    case "I16":
      return new Int16Array(buffer, byteOffset, n);
    case "U16":
    case "F16":
    case "BF16":
      return new Uint16Array(buffer, byteOffset, n);
    case "I32":
      return new Int32Array(buffer, byteOffset, n);
    case "U32":
      return new Uint32Array(buffer, byteOffset, n);
    case "F32":
      return new Float32Array(buffer, byteOffset, n);
    case "F64":
      return new Float64Array(buffer, byteOffset, n);
    case "I64":
      return new BigInt64Array(buffer, byteOffset, n);
    case "U64":
      return new BigUint64Array(buffer, byteOffset, n);
  }
}
