// A model folder's weights as one name → tensor index, whether they sit in one model.safetensors
// or pytorch_model.bin, or are sharded through model.safetensors.index.json or
// pytorch_model.bin.index.json ("weight_map": name → shard file). Safetensors wins when a folder
// has both, as in transformers. Only headers (a .bin's zip directory and pickle) are read here;
// tensors are read one at a time when the runtime uploads them, whatever the format.

import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { readConverted } from "./convert-read.js";
import { viewAs } from "./dtypes.js";
import { f32ArrayToF16 } from "./half.js";
import { UserError } from "./errors.js";
import { isFloat, readSafetensorsHeader, readTensor, toF32, type Tensor, type TensorInfo } from "./safetensors.js";
import { CheckpointError } from "./torch-errors.js";
import { readStridedBytes, readTorchBinHeader } from "./torch-zip.js";

export type CheckpointFormat = "safetensors" | "torch";

export interface Checkpoint {
  dir: string;
  format: CheckpointFormat;
  /** The weight files, in the order they were read. */
  files: string[];
  /** `__metadata__` of every file merged (later files win on a clash). */
  metadata: Record<string, string>;
  tensors: ReadonlyMap<string, TensorInfo>;
  /** The entry for `name`; a UserError naming the folder if there is none. */
  get(name: string): TensorInfo;
  read(name: string): Promise<Tensor>;
  /** A floating-point tensor widened to f32. */
  readF32(name: string): Promise<Float32Array>;
  /** A floating-point tensor as f16 bits (F16 as stored, others rounded to nearest even). */
  readF16(name: string): Promise<Uint16Array>;
}

const LAYOUTS: readonly { format: CheckpointFormat; index: string; single: readonly string[] }[] = [
  { format: "safetensors", index: "model.safetensors.index.json", single: ["model.safetensors", "adapter_model.safetensors"] },
  { format: "torch", index: "pytorch_model.bin.index.json", single: ["pytorch_model.bin", "adapter_model.bin"] },
];

export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  for (const { format, index, single } of LAYOUTS) {
    const indexPath = join(dir, index);
    if (await isFile(indexPath)) return openSharded(dir, indexPath, format);
    for (const name of single) {
      const file = join(dir, name);
      if (await isFile(file)) return openFiles(dir, [file], undefined, format, undefined);
    }
  }
  if (!(await isDir(dir))) throw new UserError(`${dir}: no such model folder`, { file: dir });
  const expected = LAYOUTS.flatMap((l) => [l.index, ...l.single.filter((f) => !f.startsWith("adapter_"))]);
  throw new UserError(`${dir}: no weights found: expected ${expected.join(", ")} (or the shards an index names)`, { file: dir });
}

/** One safetensors file as a checkpoint. */
export async function openSafetensorsFile(file: string): Promise<Checkpoint> {
  return openFiles(file, [file], undefined, "safetensors", undefined);
}

/** One torch.save file (zip format) as a checkpoint. */
export async function openTorchFile(file: string): Promise<Checkpoint> {
  return openFiles(file, [file], undefined, "torch", undefined);
}

async function openSharded(dir: string, indexPath: string, format: CheckpointFormat): Promise<Checkpoint> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (e) {
    throw new UserError(`${indexPath}: not valid JSON (${(e as Error).message})`, { file: indexPath });
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new UserError(`${indexPath}: missing "weight_map" object`, { file: indexPath });
  }
  const wanted = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || shard === "" || basename(shard) !== shard) {
      throw new UserError(`${indexPath}: weight_map entry for tensor '${name}' must be a file name in the same folder`, {
        file: indexPath,
        tensor: name,
      });
    }
    wanted.set(name, join(dir, shard));
  }
  const files = [...new Set(wanted.values())];
  for (const f of files) {
    if (!(await isFile(f))) {
      const names = [...wanted].filter(([, s]) => s === f).map(([n]) => n);
      throw new CheckpointError(
        "missing-shard",
        `${f}: missing shard: ${basename(indexPath)} maps ${names.length} tensor${names.length === 1 ? "" : "s"} (${q(names[0]!)}${names.length > 1 ? ", ..." : ""}) to ${basename(f)}, which is not in ${dir}; download every file the index names`,
        { file: f, tensor: names[0]! },
      );
    }
  }
  return openFiles(dir, files, wanted, format, basename(indexPath));
}

function q(s: string): string {
  return `'${s}'`;
}

async function openFiles(dir: string, files: string[], wanted: Map<string, string> | undefined, format: CheckpointFormat, indexName: string | undefined): Promise<Checkpoint> {
  const headers = await Promise.all(files.map((f) => (format === "torch" ? readTorchBinHeader(f) : readSafetensorsHeader(f))));
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const h of headers) {
    if ("metadata" in h) Object.assign(metadata, h.metadata);
    for (const t of h.tensors) {
      if (wanted && wanted.get(t.name) !== h.file) continue; // shards may carry tensors the index does not list
      const prev = tensors.get(t.name);
      if (prev) {
        throw new UserError(`tensor '${t.name}' appears in both ${prev.file} and ${t.file}`, { file: t.file, tensor: t.name });
      }
      tensors.set(t.name, t);
    }
  }
  if (wanted) {
    for (const [name, file] of wanted) {
      if (!tensors.has(name)) {
        throw new CheckpointError("absent-tensor", `${file}: tensor '${name}' is listed in ${indexName} but missing from the file; the index and the shards are from different downloads`, { file, tensor: name });
      }
    }
  }
  const get = (name: string): TensorInfo => {
    const t = tensors.get(name);
    if (!t) throw new UserError(`${dir}: checkpoint has no tensor '${name}'`, { file: dir, tensor: name });
    return t;
  };
  return {
    dir,
    format,
    files,
    metadata,
    tensors,
    get,
    read: (name) => readAny(get(name)),
    readF32: async (name) => {
      const info = floatInfo(get(name));
      return streamable(info) ? readConverted(info, "f32") : toF32(await readAny(info));
    },
    readF16: async (name) => {
      const info = floatInfo(get(name));
      return streamable(info) ? readConverted(info, "f16") : f32ArrayToF16(toF32(await readAny(info)));
    },
  };
}

function floatInfo(info: TensorInfo): TensorInfo {
  if (!isFloat(info.dtype)) {
    throw new CheckpointError("unsupported-dtype", `${info.file}: tensor '${info.name}' has dtype ${info.dtype}, not a floating-point type pefc can load as a weight`, { file: info.file, tensor: info.name });
  }
  return info;
}

/** Contiguous halves and singles convert chunk by chunk as they are read. */
function streamable(info: TensorInfo): boolean {
  return !info.view && (info.dtype === "F32" || info.dtype === "F16" || info.dtype === "BF16");
}

async function readAny(info: TensorInfo): Promise<Tensor> {
  if (!info.view) return readTensor(info);
  const bytes = await readStridedBytes(info as TensorInfo & { view: NonNullable<TensorInfo["view"]> });
  return { dtype: info.dtype, shape: [...info.shape], data: viewAs(info.dtype, bytes) };
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/**
 * What a model folder lacks for a run, each as a sentence naming the file: the weights (every shard
 * an index names) and a tokenizer. Reads only the index; empty when everything is there.
 */
export async function missingModelFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let weights = false;
  for (const { index, single } of LAYOUTS) {
    const indexPath = join(dir, index);
    if (await isFile(indexPath)) {
      weights = true;
      let shards: string[] = [];
      try {
        const map = (JSON.parse(await readFile(indexPath, "utf8")) as { weight_map?: Record<string, unknown> }).weight_map ?? {};
        shards = [...new Set(Object.values(map).filter((s): s is string => typeof s === "string"))];
      } catch {
        out.push(`${indexPath} is not valid JSON`);
      }
      for (const s of shards) if (!(await isFile(join(dir, s)))) out.push(`${join(dir, s)} is missing (${index} names it)`);
      break;
    }
    for (const name of single.filter((f) => !f.startsWith("adapter_"))) if (await isFile(join(dir, name))) weights = true;
    if (weights) break;
  }
  if (!weights) out.push(`${dir} holds no weights: expected ${LAYOUTS.flatMap((l) => [l.index, l.single[0]]).join(", ")}`);
  if (!(await isFile(join(dir, "tokenizer.json"))) && !(await isFile(join(dir, "tokenizer.model")))) out.push(`${join(dir, "tokenizer.model")} (or tokenizer.json) is missing`);
  return out;
}
