// Reading PyTorch checkpoints (`pytorch_model.bin` and its shards): the zip archive torch.save has
// written since 1.6, read by the maintained `yauzl`. The archive holds `PREFIX/data.pkl` (the
// pickled state dict, see torch-pickle.ts), `PREFIX/data/KEY` (one entry per storage, stored
// uncompressed) and `PREFIX/byteorder` (newer torch; absent means little-endian). Only the
// directory and the small pickle are read up front: each tensor is located as a byte range of its
// storage entry and read on demand like a safetensors tensor, so host memory holds one tensor, not
// the shard. A view that is not contiguous (a transposed or strided tensor) is gathered on read.

import { close, createReadStream, read, openSync } from "node:fs";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import yauzl from "yauzl";
import { dtypeSize, numel } from "./dtypes.js";
import type { TensorInfo } from "./safetensors.js";
import { CheckpointError } from "./torch-errors.js";
import { unpickleStateDict, type TensorRecord } from "./torch-pickle.js";

export interface TorchBinHeader {
  file: string;
  fileSize: number;
  /** In pickle order. */
  tensors: TensorInfo[];
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** torch.save's legacy format starts with a pickled magic number, 0x1950a86a20f9469cfc6c, as a LONG1. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const MAX_PICKLE = 1 << 30;

export async function readTorchBinHeader(file: string): Promise<TorchBinHeader> {
  const { head, fileSize } = await readHead(file);
  if (!ZIP_MAGIC.every((b, i) => head[i] === b)) {
    const tar = head.length >= 262 && new TextDecoder().decode(head.subarray(257, 262)) === "ustar";
    if (tar || LEGACY_MAGIC.every((b, i) => head[i] === b)) {
      throw new CheckpointError(
        "legacy-format",
        `${file}: written in torch.save's legacy format (PyTorch before 1.6${tar ? ", a tar archive" : ""}), which pefc does not read; re-save it with a current torch (torch.save(torch.load(f), f)) or convert it to safetensors`,
        { file },
      );
    }
    throw new CheckpointError("corrupt", `${file}: not a PyTorch checkpoint: a torch.save file is a zip archive, and this one does not start like one`, { file });
  }
  let zip: yauzl.ZipFile;
  const reader = new BoundedReader(file, fileSize);
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(reader, fileSize, { lazyEntries: true, autoClose: false });
  } catch (e) {
    reader.close(() => undefined);
    throw new CheckpointError("truncated", `${file}: the zip archive's directory cannot be read (${(e as Error).message}): the file is cut short or damaged; download it again`, { file });
  }
  try {
    const entries = new Map<string, yauzl.Entry>();
    try {
      for await (const entry of zip.eachEntry()) entries.set(entry.fileName, entry);
    } catch (e) {
      throw new CheckpointError("corrupt", `${file}: damaged zip directory (${(e as Error).message})`, { file });
    }
    const pklNames = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pklNames.length !== 1) {
      throw new CheckpointError("corrupt", `${file}: a zip archive, but not one torch.save wrote: expected one PREFIX/data.pkl entry, found ${pklNames.length}`, { file });
    }
    const prefix = pklNames[0]!.slice(0, -"/data.pkl".length);
    const byteorder = entries.get(`${prefix}/byteorder`);
    if (byteorder) {
      const order = new TextDecoder().decode(await readEntry(zip, byteorder, file)).trim();
      if (order !== "little") throw new CheckpointError("unsupported-dtype", `${file}: tensors stored ${order}-endian; pefc reads little-endian checkpoints only`, { file });
    }
    const records = unpickleStateDict(await readEntry(zip, entries.get(pklNames[0]!)!, file), file);
    const starts = new Map<string, number>();
    const tensors: TensorInfo[] = [];
    for (const [name, r] of records) {
      const where = { file, tensor: name };
      const { storage } = r;
      if (storage.dtype === undefined) {
        throw new CheckpointError("unsupported-dtype", `${file}: tensor '${name}' is stored as ${storage.storageClass}, an element type pefc does not read (it reads float32, float16 and bfloat16 weights, and integer or bool buffers)`, where);
      }
      const entryName = `${prefix}/data/${storage.key}`;
      const entry = entries.get(entryName);
      if (!entry) throw new CheckpointError("truncated", `${file}: tensor '${name}': its storage ${entryName} is missing from the archive`, where);
      if (entry.compressionMethod !== 0) {
        throw new CheckpointError("compressed", `${file}: tensor '${name}': storage ${entryName} is compressed; torch.save stores storages uncompressed, so this archive was rewritten: re-save it with torch.save`, where);
      }
      let start = starts.get(entryName);
      if (start === undefined) {
        try {
          start = (await zip.readLocalFileHeaderPromise(entry, { minimal: true })).fileDataStart;
        } catch (e) {
          throw new CheckpointError("truncated", `${file}: tensor '${name}': storage ${entryName} cannot be located (${(e as Error).message})`, where);
        }
        starts.set(entryName, start);
      }
      const size = dtypeSize(storage.dtype);
      const need = storage.numel * size;
      if (entry.uncompressedSize < need || start + need > fileSize) {
        const has = Math.max(0, Math.min(entry.uncompressedSize, fileSize - start));
        throw new CheckpointError("truncated", `${file}: tensor '${name}': storage ${entryName} holds ${has} bytes but its ${storage.numel} ${storage.storageClass} elements need ${need}: the entry is truncated`, where);
      }
      tensors.push(tensorInfo(name, r, file, start, size));
    }
    return { file, fileSize, tensors };
  } finally {
    zip.close();
  }
}

/**
 * The file as yauzl reads it, every read checked against the file's size first: a damaged
 * directory can declare offsets past 2^53, which fs.read would throw on outside any callback.
 */
class BoundedReader extends yauzl.RandomAccessReader {
  private readonly fd: number;
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly size: number,
  ) {
    super();
    this.fd = openSync(file, "r");
  }

  private inRange(position: number, length: number): boolean {
    return Number.isSafeInteger(position) && position >= 0 && length >= 0 && position + length <= this.size;
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    if (!this.inRange(position, length)) {
      callback(new Error(`bytes ${position}..${position + length} lie outside the ${this.size}-byte file`));
      return;
    }
    read(this.fd, buffer, offset, length, position, (err, n) => callback(err, n));
  }

  override _readStreamForRange(start: number, end: number): Readable {
    if (!this.inRange(start, end - start)) throw new Error(`bytes ${start}..${end} lie outside the ${this.size}-byte file`);
    return createReadStream(this.file, { start, end: end - 1 });
  }

  override close(callback: (err: Error | null) => void): void {
    if (this.closed) return callback(null);
    this.closed = true;
    close(this.fd, (err) => callback(err ?? null));
  }
}

function tensorInfo(name: string, r: TensorRecord, file: string, storageStart: number, size: number): TensorInfo {
  const dtype = r.storage.dtype!;
  const n = numel(r.shape);
  if (n > 0) {
    let last = r.offset;
    for (let d = 0; d < r.shape.length; d++) last += (r.shape[d]! - 1) * r.strides[d]!;
    if (last >= r.storage.numel) {
      throw new CheckpointError("corrupt", `${file}: tensor '${name}' (size [${r.shape.join(", ")}], stride [${r.strides.join(", ")}], offset ${r.offset}) reaches past the ${r.storage.numel} elements of its storage`, { file, tensor: name });
    }
  }
  const base = { name, dtype, shape: [...r.shape], file };
  if (n === 0 || isContiguous(r.shape, r.strides)) {
    const start = storageStart + r.offset * size;
    return { ...base, start, end: start + n * size };
  }
  return {
    ...base,
    start: storageStart,
    end: storageStart + r.storage.numel * size,
    view: { offset: r.offset, strides: [...r.strides] },
  };
}

function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expect) return false;
    expect *= shape[d]!;
  }
  return true;
}

/** The elements of a strided view, in row-major order, gathered from its storage's bytes. */
export async function readStridedBytes(info: TensorInfo & { view: NonNullable<TensorInfo["view"]> }): Promise<Uint8Array> {
  const size = dtypeSize(info.dtype);
  const { offset, strides } = info.view;
  const shape = info.shape;
  // Strides are non-negative, so the view spans storage elements offset..last.
  let last = offset;
  for (let d = 0; d < shape.length; d++) last += (shape[d]! - 1) * strides[d]!;
  const fh = await open(info.file, "r");
  let src: Uint8Array;
  try {
    src = new Uint8Array((last - offset + 1) * size);
    const { bytesRead } = await fh.read(src, 0, src.length, info.start + offset * size);
    if (bytesRead !== src.length) throw new CheckpointError("truncated", `${info.file}: tensor '${info.name}': the file ends inside its storage`, { file: info.file, tensor: info.name });
  } finally {
    await fh.close();
  }
  const n = numel(shape);
  const out = new Uint8Array(n * size);
  const idx = new Array<number>(shape.length).fill(0);
  let at = 0; // element index into src, relative to offset
  for (let i = 0; i < n; i++) {
    out.set(src.subarray(at * size, at * size + size), i * size);
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]!++;
      at += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      at -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

async function readHead(file: string): Promise<{ head: Uint8Array; fileSize: number }> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === "ENOENT" ? "missing-shard" : "corrupt", `${file}: cannot open: ${code === "ENOENT" ? "no such file" : (e as Error).message}`, { file });
  }
  try {
    const fileSize = (await fh.stat()).size;
    const head = new Uint8Array(Math.min(512, fileSize));
    await fh.read(head, 0, head.length, 0);
    return { head, fileSize };
  } finally {
    await fh.close();
  }
}

async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, file: string): Promise<Uint8Array> {
  if (entry.uncompressedSize > MAX_PICKLE) throw new CheckpointError("corrupt", `${file}: ${entry.fileName} declares ${entry.uncompressedSize} bytes`, { file });
  const chunks: Buffer[] = [];
  try {
    const stream = await zip.openReadStreamPromise(entry);
    for await (const c of stream) chunks.push(c as Buffer);
  } catch (e) {
    throw new CheckpointError("truncated", `${file}: cannot read ${entry.fileName} (${(e as Error).message}): the archive is cut short or damaged`, { file });
  }
  return new Uint8Array(Buffer.concat(chunks));
}
