// Reading Hugging Face safetensors files: 8-byte little-endian header length, a JSON header
// ({name: {dtype, shape, data_offsets}} plus an optional "__metadata__" string map), then the
// tensors' bytes. Only the header is read up front; each tensor is read on demand from its byte
// range, so multi-GB checkpoints never sit in memory whole. The header is checked as strictly as
// the reference loader does (contiguous, non-overlapping ranges covering the data exactly), so a
// file accepted here also loads in Python, and a damaged one fails naming the file and tensor.

import { open, type FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import { isDtype, dtypeSize, numel, viewAs, type Dtype, type RawArray } from "./dtypes.js";
import { bf16ArrayToF32, f16ArrayToF32 } from "./half.js";
import { UserError } from "./errors.js";

/** Where one tensor lives and what it holds. Offsets are absolute positions in `file`. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  file: string;
  start: number;
  end: number;
  /**
   * A torch checkpoint's strided view: `start..end` is then its whole storage, and the tensor is
   * the elements at `offset + Σ index[d]·strides[d]` of it. Absent for contiguous data.
   */
  view?: { offset: number; strides: number[] };
}

export interface SafetensorsHeader {
  file: string;
  /** Length of the JSON header in bytes (without the 8-byte length prefix). */
  headerSize: number;
  fileSize: number;
  metadata: Record<string, string>;
  /** In file order. */
  tensors: TensorInfo[];
}

export interface Tensor {
  dtype: Dtype;
  shape: number[];
  /** Raw elements; F16/BF16 as their bits in a Uint16Array. */
  data: RawArray;
}

/** The reference loader's cap; a larger length means a corrupt or foreign file. */
const MAX_HEADER_SIZE = 100_000_000;
/** fs reads are capped near 2 GiB per call. */
const MAX_READ = 1 << 30;

if (endianness() !== "LE") throw new Error("pefc reads safetensors only on little-endian hosts");

export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await openForRead(file);
  try {
    const fileSize = (await fh.stat()).size;
    if (fileSize < 8) {
      throw new UserError(`${file}: not a safetensors file: it has ${fileSize} bytes, fewer than the 8-byte header length`, { file });
    }
    const lenBytes = await readExactly(fh, file, 0, 8);
    const len = new DataView(lenBytes.buffer).getBigUint64(0, true);
    if (len > BigInt(MAX_HEADER_SIZE) || Number(len) > fileSize - 8) {
      throw new UserError(
        `${file}: corrupt safetensors header: it declares a ${len}-byte header but the file has ${fileSize} bytes` +
          (len > BigInt(MAX_HEADER_SIZE) ? "" : " (truncated?)"),
        { file },
      );
    }
    const headerSize = Number(len);
    const json = await readExactly(fh, file, 8, headerSize);
    return parseSafetensorsHeader(file, json, fileSize);
  } finally {
    await fh.close();
  }
}

/** Parses and validates the JSON header bytes of `file`, whose total size is `fileSize`. */
export function parseSafetensorsHeader(file: string, json: Uint8Array, fileSize: number): SafetensorsHeader {
  const headerSize = json.byteLength;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(json);
  } catch {
    throw new UserError(`${file}: corrupt safetensors header: not valid UTF-8`, { file });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: corrupt safetensors header: not valid JSON (${(e as Error).message})`, { file });
  }
  if (!text.startsWith("{") || !isPlainObject(parsed)) {
    throw new UserError(`${file}: corrupt safetensors header: expected a JSON object`, { file });
  }
  const dataStart = 8 + headerSize;
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      if (!isPlainObject(entry) || Object.values(entry).some((v) => typeof v !== "string")) {
        throw new UserError(`${file}: corrupt safetensors header: __metadata__ must map strings to strings`, { file });
      }
      Object.assign(metadata, entry);
      continue;
    }
    tensors.push(parseEntry(file, name, entry, dataStart));
  }
  tensors.sort((a, b) => a.start - b.start || a.end - b.end);
  let at = dataStart;
  let prev: TensorInfo | undefined;
  for (const t of tensors) {
    if (t.start < at) {
      throw new UserError(
        `${file}: corrupt safetensors header: tensor '${t.name}' (data_offsets ${rel(t, dataStart)}) overlaps tensor '${prev?.name}' (data_offsets ${prev ? rel(prev, dataStart) : ""})`,
        { file, tensor: t.name },
      );
    }
    if (t.start > at) {
      throw new UserError(
        `${file}: corrupt safetensors header: bytes ${at - dataStart}..${t.start - dataStart} of the data before tensor '${t.name}' belong to no tensor`,
        { file, tensor: t.name },
      );
    }
    at = t.end;
    prev = t;
  }
  if (at > fileSize) {
    const last = tensors[tensors.length - 1]!;
    throw new UserError(
      `${file}: truncated: tensor '${last.name}' ends at byte ${at} but the file has ${fileSize} bytes`,
      { file, tensor: last.name },
    );
  }
  if (at < fileSize) {
    throw new UserError(`${file}: corrupt safetensors file: ${fileSize - at} bytes after the last tensor belong to no tensor`, { file });
  }
  return { file, headerSize, fileSize, metadata, tensors };
}

function parseEntry(file: string, name: string, entry: unknown, dataStart: number): TensorInfo {
  const bad = (why: string): UserError =>
    new UserError(`${file}: corrupt safetensors header: tensor '${name}': ${why}`, { file, tensor: name });
  if (!isPlainObject(entry)) throw bad("entry is not an object");
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isDtype(dtype)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0]! > offsets[1]!) {
    throw bad(`data_offsets ${JSON.stringify(offsets)} is not a [begin, end] pair with begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const need = numel(shape as number[]) * dtypeSize(dtype);
  if (end - begin !== need) {
    throw bad(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape [${shape.join(", ")}] of ${dtype} needs ${need}`);
  }
  return { name, dtype, shape: [...(shape as number[])], file, start: dataStart + begin, end: dataStart + end };
}

/** The tensor's raw bytes, in a fresh 8-byte-aligned buffer. */
export async function readTensorBytes(info: TensorInfo): Promise<Uint8Array> {
  const fh = await openForRead(info.file);
  try {
    return await readExactly(fh, info.file, info.start, info.end - info.start, info.name);
  } finally {
    await fh.close();
  }
}

export async function readTensor(info: TensorInfo): Promise<Tensor> {
  const bytes = await readTensorBytes(info);
  return { dtype: info.dtype, shape: [...info.shape], data: viewAs(info.dtype, bytes) };
}

/** Reads a floating-point tensor widened to f32 (F32, F16, BF16, F64). */
export async function readTensorF32(info: TensorInfo): Promise<Float32Array> {
  if (!isFloat(info.dtype)) {
    throw new UserError(`${info.file}: tensor '${info.name}' has dtype ${info.dtype}, not a floating-point type`, {
      file: info.file,
      tensor: info.name,
    });
  }
  const t = await readTensor(info);
  return toF32(t);
}

export function isFloat(d: Dtype): boolean {
  return d === "F32" || d === "F16" || d === "BF16" || d === "F64";
}

/** Widens a floating-point tensor's elements to f32. */
export function toF32(t: Tensor): Float32Array {
  switch (t.dtype) {
    case "F32":
      return t.data as Float32Array;
    case "F16":
      return f16ArrayToF32(t.data as Uint16Array);
    case "BF16":
      return bf16ArrayToF32(t.data as Uint16Array);
    case "F64":
      return Float32Array.from(t.data as Float64Array);
    default:
      throw new Error(`toF32: dtype ${t.dtype} is not floating point`);
  }
}

async function openForRead(file: string): Promise<FileHandle> {
  try {
    return await open(file, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new UserError(`${file}: cannot open: ${why}`, { file });
  }
}

async function readExactly(fh: FileHandle, file: string, position: number, length: number, tensor?: string): Promise<Uint8Array> {
  // A fresh ArrayBuffer starts at offset 0, so any typed view over it is aligned.
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, Math.min(length - done, MAX_READ), position + done);
    if (bytesRead === 0) {
      const what = tensor ? `tensor '${tensor}'` : "header";
      throw new UserError(`${file}: truncated: ${what} needs bytes ${position}..${position + length} but the file ends at ${position + done}`, {
        file,
        ...(tensor ? { tensor } : {}),
      });
    }
    done += bytesRead;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function rel(t: TensorInfo, dataStart: number): string {
  return `[${t.start - dataStart}, ${t.end - dataStart}]`;
}
