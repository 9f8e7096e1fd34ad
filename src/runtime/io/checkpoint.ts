// A model folder's weights as one name → tensor index, whether they sit in one model.safetensors
// or are sharded through model.safetensors.index.json ("weight_map": name → shard file). Only
// headers are read here; tensors are read one at a time when the runtime uploads them.

import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { UserError } from "./errors.js";
import { readSafetensorsHeader, readTensor, readTensorF32, type Tensor, type TensorInfo } from "./safetensors.js";

export interface Checkpoint {
  dir: string;
  /** The safetensors files, in the order they were read. */
  files: string[];
  /** `__metadata__` of every file merged (later files win on a clash). */
  metadata: Record<string, string>;
  tensors: ReadonlyMap<string, TensorInfo>;
  /** The entry for `name`; a UserError naming the folder if there is none. */
  get(name: string): TensorInfo;
  read(name: string): Promise<Tensor>;
  /** A floating-point tensor widened to f32. */
  readF32(name: string): Promise<Float32Array>;
}

const INDEX = "model.safetensors.index.json";
const SINGLE = ["model.safetensors", "adapter_model.safetensors"];

export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const indexPath = join(dir, INDEX);
  if (await isFile(indexPath)) return openSharded(dir, indexPath);
  for (const name of SINGLE) {
    const file = join(dir, name);
    if (await isFile(file)) return openFiles(dir, [file], undefined);
  }
  if (!(await isDir(dir))) throw new UserError(`${dir}: no such model folder`, { file: dir });
  throw new UserError(`${dir}: no weights found: expected ${INDEX} or ${SINGLE.join(" or ")}`, { file: dir });
}

/** One safetensors file as a checkpoint. */
export async function openSafetensorsFile(file: string): Promise<Checkpoint> {
  return openFiles(file, [file], undefined);
}

async function openSharded(dir: string, indexPath: string): Promise<Checkpoint> {
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
  return openFiles(dir, files, wanted);
}

async function openFiles(dir: string, files: string[], wanted: Map<string, string> | undefined): Promise<Checkpoint> {
  const headers = await Promise.all(files.map((f) => readSafetensorsHeader(f)));
  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  for (const h of headers) {
    Object.assign(metadata, h.metadata);
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
        throw new UserError(`${file}: tensor '${name}' is listed in ${INDEX} but missing from the file`, { file, tensor: name });
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
    files,
    metadata,
    tensors,
    get,
    read: (name) => readTensor(get(name)),
    readF32: (name) => readTensorF32(get(name)),
  };
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}
