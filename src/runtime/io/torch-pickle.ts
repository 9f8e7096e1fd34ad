// The pickled state dict inside a torch.save archive (its data.pkl), unpickled by the maintained
// `pickleparser` library with its name and persistent-id hooks. A pickle is a program: GLOBAL names
// a Python callable and REDUCE calls it. Here every name resolves to one of a fixed few builders —
// an ordered dict, a tensor rebuilt over a storage (torch._utils._rebuild_tensor_v2, with its size,
// stride and storage offset) or a parameter wrapping one — and the storage classes are markers
// carrying their element type. Any other name is refused by name before anything is built, so a
// checkpoint can never make pefc run or construct anything else.

import { Parser } from "pickleparser";
import type { Dtype } from "./dtypes.js";
import { CheckpointError } from "./torch-errors.js";

/** Storage class → element type, for the types pefc can hold in a tensor. */
const STORAGE_DTYPES: Readonly<Record<string, Dtype>> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/** One storage of the archive: the bytes of entry `data/{key}`. */
export interface StorageRef {
  key: string;
  /** Undefined when the storage class is one pefc does not read (complex, quantized...). */
  dtype: Dtype | undefined;
  storageClass: string;
  numel: number;
}

/** A tensor as torch rebuilds it: a view of `shape` and `strides` (elements) from `offset` into a storage. */
export interface TensorRecord {
  storage: StorageRef;
  offset: number;
  shape: number[];
  strides: number[];
}

const STORAGE_MARK = Symbol("torch storage class");
const TENSOR_MARK = Symbol("torch tensor");

interface StorageClass {
  [STORAGE_MARK]: string;
}

type Tagged = TensorRecord & { [TENSOR_MARK]: true };

function orderedDict(): Map<unknown, unknown> {
  // pickleparser gives BUILD to __setstate__ when present; an OrderedDict's state is its
  // attributes (a state dict's `_metadata` of module versions), which pefc does not need.
  const m = new Map<unknown, unknown>();
  Object.defineProperty(m, "__setstate__", { value: () => undefined, enumerable: false });
  return m;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isCountList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every(isCount);
}

/**
 * Unpickles `pkl` (the data.pkl of `file`) into its tensors, by name, in pickle order. Entries whose
 * value is not a tensor (a saved step counter, say) are left out; a nested dict of tensors is not a
 * state dict and is refused.
 */
export function unpickleStateDict(pkl: Uint8Array, file: string): Map<string, TensorRecord> {
  const refuse = (what: string): never => {
    throw new CheckpointError(
      "refused-global",
      `${file}: the pickle names ${what}, which is not part of a tensor state dict; pefc rebuilds tensors only (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage) and never runs other code from a checkpoint. Convert the file to safetensors, or re-save a plain state dict with torch.save`,
      { file },
    );
  };
  const bad = (why: string): never => {
    throw new CheckpointError("corrupt", `${file}: corrupt pickle: ${why}`, { file });
  };
  // BUILD assigns a pickled state onto the object below it: everything built here is frozen, so
  // no opcode can change a storage or tensor after its checks, and only storages made by the
  // persistent-id hook count as storages.
  const storages = new WeakSet<object>();
  const rebuildTensor = (storage: unknown, offset: unknown, shape: unknown, strides: unknown): Tagged => {
    if (typeof storage !== "object" || storage === null || !storages.has(storage)) bad("_rebuild_tensor_v2 without a storage");
    if (!isCount(offset) || !isCountList(shape) || !isCountList(strides) || shape.length !== strides.length) {
      bad(`_rebuild_tensor_v2 with offset ${String(offset)}, size ${JSON.stringify(shape)}, stride ${JSON.stringify(strides)}`);
    }
    return Object.freeze({ [TENSOR_MARK]: true as const, storage: storage as StorageRef, offset: offset as number, shape: Object.freeze([...(shape as number[])]) as number[], strides: Object.freeze([...(strides as number[])]) as number[] });
  };
  const names: Record<string, unknown> = {
    "collections.OrderedDict": orderedDict,
    "torch._utils._rebuild_tensor_v2": rebuildTensor,
    "torch._utils._rebuild_tensor": rebuildTensor,
    "torch._utils._rebuild_parameter": (data: unknown) => data,
  };
  const nameResolver = {
    resolve(module: string, name: string): (...args: unknown[]) => unknown {
      const full = `${module}.${name}`;
      const known = names[full];
      if (typeof known === "function") return known as (...args: unknown[]) => unknown;
      if (module === "torch" && name.endsWith("Storage")) {
        // A marker, not a callable: a REDUCE on it fails as corrupt, never constructs anything.
        return Object.freeze({ [STORAGE_MARK]: name }) as unknown as (...args: unknown[]) => unknown;
      }
      return refuse(`the global ${full}`);
    },
  };
  const persistentResolver = {
    resolve(pid: unknown): StorageRef {
      if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== "storage") return bad(`persistent id ${JSON.stringify(pid)} is not a torch storage`);
      const [, cls, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
      const storageClass = (cls as Partial<StorageClass> | null)?.[STORAGE_MARK];
      if (typeof storageClass !== "string") return bad("a storage without a torch storage class");
      if (typeof key !== "string" || !/^\w+$/.test(key)) return bad(`storage key ${JSON.stringify(key)}`);
      if (!isCount(numel)) return bad(`storage ${key} has ${String(numel)} elements`);
      const ref = Object.freeze({ key, dtype: STORAGE_DTYPES[storageClass], storageClass: `torch.${storageClass}`, numel });
      storages.add(ref);
      return ref;
    },
  };
  const extensionResolver = {
    resolve(code: number): never {
      return refuse(`extension code ${code}`);
    },
  };
  let root: unknown;
  // The parser warns on the console about integers past 2^53, which only a damaged pickle holds
  // (the sizes it then rebuilds fail the checks below); parsing is synchronous, so the console is
  // quiet for exactly its duration.
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    root = new Parser({ nameResolver, persistentResolver, extensionResolver, unpicklingTypeOfDictionary: "Map" }).parse(pkl);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    return bad(e instanceof Error ? e.message : String(e));
  } finally {
    console.warn = warn;
  }
  if (!(root instanceof Map)) return bad("the pickle holds no dict of tensors");
  const out = new Map<string, TensorRecord>();
  for (const [k, v] of root) {
    if (typeof v !== "object" || v === null || !(TENSOR_MARK in v)) {
      if (v instanceof Map) {
        throw new CheckpointError("corrupt", `${file}: entry '${String(k)}' is a nested dict, not a tensor: this is a training checkpoint, not a state dict; save model.state_dict() instead`, { file });
      }
      continue;
    }
    if (typeof k !== "string") bad(`a tensor keyed by ${typeof k}`);
    const { storage, offset, shape, strides } = v as Tagged;
    out.set(k as string, { storage, offset, shape, strides });
  }
  return out;
}
