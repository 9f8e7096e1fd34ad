/**
 * PyTorch pickle checkpoints (pytorch_model.bin), part of family "checkpoints". The base files are
 * written by Debian's torch at suite time (faults/bin_bases.py) into a temp folder. Seeded cases
 * damage them: the archive cut anywhere, one storage entry shortened, the central directory and its
 * end record edited, the pickle's bytes flipped, cut or given stray opcodes, and the pickle replaced
 * by one that names a global outside the tensor-rebuilding set (through GLOBAL, STACK_GLOBAL, INST,
 * OBJ, NEWOBJ, NEWOBJ_EX, EXT codes) or edits a rebuilt tensor or storage with BUILD. Each must
 * open and read exactly what torch reads, or end in a CheckpointError naming the file (and the
 * tensor at fault), in bounded time; no payload ever runs: torch.save's own __reduce__ payloads
 * and the crafted ones aim at canary files that must never appear. Folder cases: a missing shard,
 * an index naming a tensor no shard holds.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CheckpointError, UserError, openCheckpoint, openTorchFile, type Checkpoint } from "../src/runtime/io/index.js";
import { toF32 } from "../src/runtime/io/safetensors.js";
import { randomSeed, type FaultOptions } from "./lib/options.js";
import { caseSeed, int, pick, rng, type Rng } from "./lib/rng.js";
import { CaseFailure, expectThat, type Tally } from "./lib/tally.js";
import { joinZip, splitZip, zipDirectory, type ZipEntry } from "./lib/zip-bytes.js";

const CASE_LIMIT_MS = 5_000;
const ZIP64_LOCATOR = Buffer.from([0x50, 0x4b, 0x06, 0x07]);
const replay = (seed: number, i: number) => `npm run faults -- --only checkpoints --seed ${seed} --case ${i}`;

// ---- pickles written opcode by opcode (protocol 2, STACK_GLOBAL and NEWOBJ_EX from 4) ----

const enc = (s: string) => Buffer.from(s, "utf8");
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const P = {
  proto: Buffer.from([0x80, 0x04]),
  str: (s: string) => Buffer.concat([Buffer.from([0x58]), u32(enc(s).length), enc(s)]), // BINUNICODE
  int: (n: number) => Buffer.concat([Buffer.from([0x4a]), u32(n)]), // BININT
  global: (m: string, n: string) => enc(`c${m}\n${n}\n`),
  stackGlobal: (m: string, n: string) => Buffer.concat([P.str(m), P.str(n), Buffer.from([0x93])]),
  mark: Buffer.from([0x28]),
  tuple: Buffer.from([0x74]),
  tuple1: Buffer.from([0x85]),
  empty: Buffer.from([0x29]),
  emptyDict: Buffer.from([0x7d]),
  setitem: Buffer.from([0x73]),
  reduce: Buffer.from([0x52]),
  build: Buffer.from([0x62]),
  newobj: Buffer.from([0x81]),
  newobjEx: Buffer.from([0x92]),
  binpersid: Buffer.from([0x51]),
  false: Buffer.from([0x89]),
  stop: Buffer.from([0x2e]),
};
const cat = (...parts: Buffer[]) => Buffer.concat(parts);

/** The storage torch.save wrote as entry data/{key} with `numel` float32 elements, by persistent id. */
const storage = (key: string, numel: number) => cat(P.mark, P.str("storage"), P.global("torch", "FloatStorage"), P.str(key), P.str("cpu"), P.int(numel), P.tuple, P.binpersid);
const ints = (xs: number[]) => cat(P.mark, ...xs.map(P.int), P.tuple);
/** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
const rebuild = (store: Buffer, offset: number, size: number[], stride: number[]) =>
  cat(P.global("torch._utils", "_rebuild_tensor_v2"), P.mark, store, P.int(offset), ints(size), ints(stride), P.false, P.global("collections", "OrderedDict"), P.empty, P.reduce, P.tuple, P.reduce);
/** { name: value } as a state dict pickle. */
const stateDict = (...items: [string, Buffer][]) => cat(P.proto, P.global("collections", "OrderedDict"), P.empty, P.reduce, ...items.map(([k, v]) => cat(P.str(k), v, P.setitem)), P.stop);

const DANGEROUS: [string, string][] = [
  ["builtins", "eval"], ["builtins", "exec"], ["os", "system"], ["posix", "system"], ["nt", "system"], ["subprocess", "check_output"],
  ["subprocess", "Popen"], ["builtins", "__import__"], ["__builtin__", "eval"], ["builtins", "getattr"], ["builtins", "open"], ["io", "open"],
  ["shutil", "rmtree"], ["torch.storage", "_load_from_bytes"], ["torch", "load"], ["numpy.core.multiarray", "_reconstruct"],
  ["torch._utils", "_rebuild_qtensor"], ["torch._utils", "_rebuild_device_tensor_from_numpy"], ["collections", "defaultdict"], ["torch", "Tensor"],
  ["torch.nn.modules.linear", "Linear"], ["pickle", "loads"], ["runpy", "run_path"], ["types", "FunctionType"], ["torch.serialization", "load"],
  ["torch", "__builtins__"], ["collections", "OrderedDict.__init__"], ["torch._utils", "_rebuild_tensor_v2.__globals__"],
];

interface Crafted {
  label: string;
  pkl: Buffer;
  /** Which CheckpointError kinds are right: a named global outside the set is always refused as such. */
  kinds: string[];
}

/** One pickle that tries to get past the allow-list; `canary` is a file the payload would create. */
function crafted(r: Rng, canary: string, numel: number): Crafted {
  const [m, n] = pick(r, DANGEROUS);
  const cmd = P.str(r() < 0.5 ? `touch '${canary}'` : `open(${JSON.stringify(canary)}, 'w').close()`);
  const good = rebuild(storage("0", numel), 0, [numel], [1]);
  const inDict = (v: Buffer) => stateDict(["embed.weight", good], [pick(r, ["payload", "embed.weight", "layers.0.attn.weight"]), v]);
  const refused = ["refused-global"];
  switch (int(r, 0, 11)) {
    case 0: return { label: `GLOBAL ${m}.${n} + REDUCE`, pkl: inDict(cat(P.global(m, n), cmd, P.tuple1, P.reduce)), kinds: refused };
    case 1: return { label: `STACK_GLOBAL ${m}.${n} + REDUCE`, pkl: inDict(cat(P.stackGlobal(m, n), cmd, P.tuple1, P.reduce)), kinds: refused };
    case 2: return { label: `INST ${m}.${n}`, pkl: inDict(cat(P.mark, cmd, enc(`i${m}\n${n}\n`))), kinds: refused };
    case 3: return { label: `OBJ ${m}.${n}`, pkl: inDict(cat(P.mark, P.global(m, n), cmd, Buffer.from([0x6f]))), kinds: refused };
    case 4: return { label: `NEWOBJ ${m}.${n}`, pkl: inDict(cat(P.global(m, n), cmd, P.tuple1, P.newobj)), kinds: refused };
    case 5: return { label: `NEWOBJ_EX ${m}.${n}`, pkl: inDict(cat(P.global(m, n), cmd, P.tuple1, P.emptyDict, P.newobjEx)), kinds: refused };
    case 6: return { label: `${m}.${n} as a tensor's offset`, pkl: stateDict(["embed.weight", cat(P.global("torch._utils", "_rebuild_tensor_v2"), P.mark, storage("0", numel), P.global(m, n), cmd, P.tuple1, P.reduce, ints([numel]), ints([1]), P.false, P.emptyDict, P.tuple, P.reduce)]), kinds: refused };
    case 7: {
      const ext = pick(r, [Buffer.from([0x82, 1]), Buffer.from([0x83, 1, 2]), Buffer.from([0x84, 1, 0, 0, 0])]);
      return { label: `EXT opcode 0x${ext[0]!.toString(16)}`, pkl: inDict(cat(ext, cmd, P.tuple1, P.reduce)), kinds: refused };
    }
    case 8: {
      // BUILD on a rebuilt tensor: its checked offset, size and stride overwritten afterwards.
      const field = pick(r, ["offset", "shape", "strides", "storage"]);
      const value = field === "offset" ? P.int(pick(r, [numel * 4, 0xfffffff0])) : field === "storage" ? P.str("0") : ints(pick(r, [[numel * 64], [1 << 30, 4], [numel, numel]]));
      return { label: `BUILD sets a tensor's ${field}`, pkl: stateDict(["embed.weight", cat(good, P.emptyDict, P.str(field), value, P.setitem, P.build)]), kinds: ["corrupt"] };
    }
    case 9: {
      // BUILD on a storage (by persistent id) before a tensor is rebuilt over it: more elements than the entry holds.
      const grown = cat(storage("0", numel), P.emptyDict, P.str("numel"), P.int(numel * 1024), P.setitem, P.build);
      return { label: "BUILD grows a storage", pkl: stateDict(["embed.weight", rebuild(grown, 0, [numel * 1024], [1])]), kinds: ["corrupt"] };
    }
    case 10: {
      // A storage class marker passed where a storage belongs, dressed up by BUILD as one.
      const fake = cat(P.global("torch", "FloatStorage"), P.emptyDict, P.str("key"), P.str("0"), P.setitem, P.str("numel"), P.int(1 << 28), P.setitem, P.str("dtype"), P.str("F32"), P.setitem, P.build);
      return { label: "a storage class dressed up as a storage", pkl: stateDict(["embed.weight", rebuild(fake, 0, [1 << 28], [1])]), kinds: ["corrupt"] };
    }
    default: {
      // Allowed names used the wrong way: constructed with NEWOBJ, or a storage class called.
      const [gm, gn] = pick(r, [["torch._utils", "_rebuild_tensor_v2"], ["torch", "FloatStorage"], ["torch._utils", "_rebuild_parameter"]] as [string, string][]);
      const how = r() < 0.5 ? P.newobj : P.reduce;
      // (_rebuild_parameter of a string returns the string: an entry that is no tensor, left out.)
      return { label: `${gm}.${gn} via ${how === P.newobj ? "NEWOBJ" : "REDUCE"} with a payload`, pkl: inDict(cat(P.global(gm, gn), cmd, P.tuple1, how)), kinds: ["corrupt", "refused-global", "opens"] };
    }
  }
}

// ---- checking one file ----

type Oracle = Record<string, number[]>;

async function valuesOf(ck: Checkpoint, name: string): Promise<number[]> {
  const t = await ck.read(name);
  return t.dtype === "I64" ? Array.from(t.data as BigInt64Array, Number) : Array.from(toF32(t));
}

/**
 * Opens `file` and reads every tensor. `exact`: the tensors must be torch's (the pickle was left
 * alone); otherwise a read only has to be whole. A refusal must be a CheckpointError naming the
 * file, and the tensor when one is named.
 */
async function openAndRead(file: string, oracle: Oracle, exact: boolean, kinds?: string[]): Promise<"read" | "refused"> {
  try {
    const ck = await openTorchFile(file);
    for (const [name, info] of ck.tensors) {
      const v = await valuesOf(ck, name);
      expectThat(v.length === info.shape.reduce((a, b) => a * b, 1), `tensor '${name}' read ${v.length} values for shape [${info.shape.join(", ")}]`);
      if (exact) expectThat(JSON.stringify(v) === JSON.stringify(oracle[name]), `tensor '${name}' reads other values than torch's`);
    }
    if (exact) expectThat(ck.tensors.size === Object.keys(oracle).length, `opened ${ck.tensors.size} tensors, torch reads ${Object.keys(oracle).length}`);
    expectThat(kinds === undefined || kinds.includes("opens"), `opened a pickle that should be refused (${ck.tensors.size} tensors)`);
    return "read";
  } catch (e) {
    if (e instanceof CaseFailure) throw e;
    if (!(e instanceof UserError)) throw e;
    expectThat(e instanceof CheckpointError, `a UserError but not a CheckpointError: ${e.message}`);
    expectThat(e.message.includes(file), `the error does not name the file: ${e.message}`);
    if (e.tensor !== undefined) expectThat(e.message.includes(`'${e.tensor}'`), `the error's tensor is not in its message: ${e.message}`);
    if (kinds) expectThat(kinds.includes(e.kind), `refused as ${e.kind}, expected ${kinds.join(" or ")}: ${e.message}`);
    return "refused";
  }
}

class Hang extends Error {}
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, no) => (timer = setTimeout(() => no(new Hang(`no answer within ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(timer));
}

interface Bases {
  dir: string;
  model: Uint8Array;
  entries: ZipEntry[];
  oracle: Oracle;
  /** Elements of storage 0 (float32). */
  numel0: number;
}

function writeBases(): Bases {
  const dir = mkdtempSync(join(tmpdir(), "pefc-faults-bin-"));
  execFileSync("/usr/bin/python3", [resolve("faults/bin_bases.py"), dir], { stdio: "pipe" });
  const model = readFileSync(join(dir, "model.bin"));
  const entries = splitZip(model);
  const first = entries.find((e) => e.name.endsWith("/data/0"))!;
  return { dir, model, entries, oracle: JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as Oracle, numel0: first.data.length / 4 };
}

const replacePkl = (b: Bases, pkl: Uint8Array) => joinZip(b.entries.map((e) => (e.name.endsWith("/data.pkl") ? { name: e.name, data: pkl } : e)));
const pklOf = (b: Bases) => b.entries.find((e) => e.name.endsWith("/data.pkl"))!.data;

async function fileCases(t: Tally, b: Bases, seed: number, count: number, only?: number): Promise<void> {
  const one = async (i: number) => {
    const r = rng(caseSeed(seed, i));
    const file = join(b.dir, `case-${seed}-${i}.bin`);
    const kind = pick(r, ["truncate", "entry", "directory", "directory", "pickle", "pickle", "opcode", "global", "global", "global"] as const);
    let bytes: Uint8Array;
    let label: string = kind;
    let exact = false;
    let kinds: string[] | undefined;
    if (kind === "truncate") {
      const cut = int(r, 0, b.model.length - 1);
      bytes = b.model.subarray(0, cut);
      label = `archive cut at byte ${cut} of ${b.model.length}`;
      kinds = ["truncated", "corrupt"];
    } else if (kind === "entry") {
      const storages = b.entries.filter((e) => /\/data\/\d+$/.test(e.name) && e.data.length > 0);
      const victim = pick(r, storages);
      const keep = int(r, 0, victim.data.length - 1);
      bytes = joinZip(b.entries.map((e) => (e === victim ? { name: e.name, data: e.data.subarray(0, keep) } : e)));
      label = `storage ${victim.name} cut to ${keep} of ${victim.data.length} bytes`;
      kinds = ["truncated"];
    } else if (kind === "directory") {
      const copy = Buffer.from(b.model);
      const { cdStart, eocd } = zipDirectory(copy);
      if (r() < 0.5) {
        const flips = int(r, 1, 4);
        for (let k = 0; k < flips; k++) copy[int(r, cdStart, copy.length - 1)] = int(r, 0, 255);
        label = `${flips} bytes of the central directory changed`;
      } else if (r() < 0.4 && copy.lastIndexOf(ZIP64_LOCATOR) > 0) {
        // torch.save writes zip64 end records too: the locator and the record it points at.
        const loc = copy.lastIndexOf(ZIP64_LOCATOR);
        const rec = Number(copy.readBigUInt64LE(loc + 8));
        const [field, at] = pick(r, [["zip64 record offset", loc + 8], ["zip64 entry count", rec + 24], ["zip64 entry total", rec + 32], ["zip64 directory size", rec + 40], ["zip64 directory offset", rec + 48]] as [string, number][]);
        const v = pick(r, [0n, 1n, 0xffffffffn, BigInt(copy.length), BigInt(cdStart + 1), 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]);
        copy.writeBigUInt64LE(v, at);
        label = `${field} set to ${v}`;
      } else {
        const [field, at, width] = pick(r, [["entry count", 8, 2], ["entry total", 10, 2], ["directory size", 12, 4], ["directory offset", 16, 4], ["comment length", 20, 2]] as [string, number, number][]);
        const v = pick(r, [0, 1, 3, 0xffff, 0xffffffff, copy.length, cdStart + 1, cdStart - 1, eocd]) % 2 ** (8 * width);
        if (width === 2) copy.writeUInt16LE(v, eocd + at);
        else copy.writeUInt32LE(v, eocd + at);
        label = `end record: ${field} set to ${v}`;
      }
      bytes = copy;
      // The pickle and storages are untouched: whatever opens must be exactly torch's tensors.
      exact = true;
    } else if (kind === "pickle") {
      const pkl = Buffer.from(pklOf(b));
      if (r() < 0.4) {
        const cut = int(r, 0, pkl.length - 1);
        bytes = replacePkl(b, pkl.subarray(0, cut));
        label = `pickle cut at byte ${cut} of ${pkl.length}`;
        kinds = ["corrupt"];
      } else {
        const flips = int(r, 1, 3);
        for (let k = 0; k < flips; k++) pkl[int(r, 0, pkl.length - 1)] = int(r, 0, 255);
        bytes = replacePkl(b, pkl);
        label = `${flips} pickle bytes changed`;
      }
    } else if (kind === "opcode") {
      const pkl = Buffer.from(pklOf(b));
      const at = int(r, 0, pkl.length - 1);
      const op = Buffer.from(Array.from({ length: int(r, 1, 6) }, () => int(r, 0, 255)));
      bytes = replacePkl(b, Buffer.concat([pkl.subarray(0, at), op, pkl.subarray(at)]));
      label = `opcodes ${op.toString("hex")} inserted at pickle byte ${at}`;
    } else {
      const c = crafted(r, join(b.dir, `CANARY-crafted-${seed}-${i}`), b.numel0);
      bytes = replacePkl(b, c.pkl);
      label = `pickle: ${c.label}`;
      kinds = c.kinds;
    }
    writeFileSync(file, bytes);
    const what = `.bin seed ${seed} case ${i}: ${label}`;
    await t.case(what, replay(seed, i), async () => {
      try {
        const started = performance.now();
        const res = await withTimeout(openAndRead(file, b.oracle, exact, kinds), CASE_LIMIT_MS);
        if (performance.now() - started > CASE_LIMIT_MS) return t.fail(what, `took ${Math.round(performance.now() - started)} ms`, replay(seed, i), "hangs");
        t.add(res === "read" ? "bin read" : kind === "global" ? "globals refused" : "bin refused");
      } catch (e) {
        if (e instanceof Hang) return t.fail(what, e.message, replay(seed, i), "hangs");
        throw e;
      } finally {
        rmSync(file, { force: true });
      }
    });
  };
  if (only !== undefined) return await one(only);
  for (let i = 0; i < count; i++) await one(i);
}

/** torch.save's own __reduce__ payloads (os.system, eval, exec) are refused by name. */
async function canaryCases(t: Tally, b: Bases): Promise<void> {
  expectThat(readFileSync(join(b.dir, "proof.txt"), "utf8").trim() === "live", "the canary payload did not run under torch.load(weights_only=False): the canary proves nothing");
  // torch.save pickles at protocol 2, where Python 3's builtins are written by their Python 2 name.
  for (const [name, global] of [["system", "posix.system"], ["eval", "__builtin__.eval"], ["exec", "__builtin__.exec"]] as const) {
    const file = join(b.dir, `canary-${name}.bin`);
    await t.case(`.bin canary: torch.save of a __reduce__ to ${global}`, "npm run faults -- --only checkpoints", async () => {
      expectThat((await openAndRead(file, b.oracle, false, ["refused-global"])) === "refused", "opened");
      const message = await openTorchFile(file).then(() => "", (e: Error) => e.message);
      expectThat(message.includes(global), `the refusal does not name ${global}: ${message}`);
      t.add("globals refused");
    });
  }
}

async function folderCases(t: Tally, b: Bases): Promise<void> {
  const shards = join(b.dir, "shards");
  const cases: { name: string; damage: (d: string) => void; kind?: string; names: string[] }[] = [
    { name: "the intact sharded folder reads as torch does", damage: () => undefined, names: [] },
    { name: "a missing shard", damage: (d) => rmSync(join(d, "pytorch_model-00002-of-00002.bin")), kind: "missing-shard", names: ["pytorch_model-00002-of-00002.bin", "'"] },
    {
      name: "an index naming a tensor no shard holds",
      damage: (d) => {
        const f = join(d, "pytorch_model.bin.index.json");
        const j = JSON.parse(readFileSync(f, "utf8")) as { weight_map: Record<string, string> };
        j.weight_map["layers.7.ghost.weight"] = "pytorch_model-00001-of-00002.bin";
        writeFileSync(f, JSON.stringify(j));
      },
      kind: "absent-tensor",
      names: ["layers.7.ghost.weight", "pytorch_model-00001-of-00002.bin"],
    },
  ];
  for (const [k, c] of cases.entries()) {
    const dir = join(b.dir, `folder-${k}`);
    cpSync(shards, dir, { recursive: true });
    c.damage(dir);
    await t.case(`.bin folder: ${c.name}`, "npm run faults -- --only checkpoints", async () => {
      try {
        const ck = await openCheckpoint(dir);
        expectThat(c.kind === undefined, `opened; expected a ${c.kind} error`);
        expectThat(ck.tensors.size === Object.keys(b.oracle).length, `opened ${ck.tensors.size} tensors`);
        for (const name of ck.tensors.keys()) expectThat(JSON.stringify(await valuesOf(ck, name)) === JSON.stringify(b.oracle[name]), `tensor '${name}' differs from torch's`);
      } catch (e) {
        if (e instanceof CaseFailure) throw e;
        expectThat(e instanceof CheckpointError, `not a CheckpointError: ${String(e)}`);
        const ce = e as CheckpointError;
        expectThat(ce.kind === c.kind, `refused as ${ce.kind}, expected ${c.kind}: ${ce.message}`);
        for (const n of c.names) expectThat(ce.message.includes(n), `the message does not name ${n}: ${ce.message}`);
      }
      t.add("bin folders");
    });
  }
}

export async function binCases(t: Tally, o: FaultOptions): Promise<void> {
  t.zero("globals refused", "canaries run");
  let b: Bases;
  try {
    b = writeBases();
  } catch (e) {
    t.fail(".bin base files", `Debian's torch could not write them (/usr/bin/python3 faults/bin_bases.py): ${(e as Error).message.split("\n")[0]}`, "npm run faults -- --only checkpoints");
    return;
  }
  try {
    const seed = o.seed ?? randomSeed();
    const n = o.quick ? 100 : (o.cases ?? 600);
    if (o.case !== undefined) {
      await fileCases(t, b, o.seed ?? 1, 0, o.case);
    } else {
      if (o.seed === undefined) await fileCases(t, b, 1, n);
      await fileCases(t, b, seed, n);
      await canaryCases(t, b);
      await folderCases(t, b);
      t.notes.push(`.bin seeds ${o.seed === undefined ? `1 and ${seed}` : seed}, ${n} cases each`);
    }
    const canaries = readdirSync(b.dir).filter((f) => f.startsWith("CANARY"));
    if (canaries.length > 0) t.fail(".bin canaries", `a checkpoint's payload ran: ${canaries.join(", ")} created`, "npm run faults -- --only checkpoints", "canaries run");
  } finally {
    rmSync(b.dir, { recursive: true, force: true });
  }
}
