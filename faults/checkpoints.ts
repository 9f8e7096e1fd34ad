/**
 * Family "checkpoints": damaged weights a user might be handed. In-process, a real model file
 * (tests' tiny ChatGLM2) cut short, its length prefix lied about (up to a 2 GB and a 2^64 claim),
 * its header edited (dtypes, shapes, offsets that overlap or point past the end) and its header
 * bytes flipped; each must open and read exactly, or fail with a UserError naming the file (and
 * the tensor when one is at fault), in bounded time. Through `pefc run`, whole model folders:
 * missing shards, an index naming absent tensors or files outside the folder, config.json that
 * disagrees with the weights. The pickle (.bin) cases plug in at checkpoints-bin.ts.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UserError, openCheckpoint, openSafetensorsFile, readTensorBytes } from "../src/runtime/io/index.js";
import { binCases } from "./checkpoints-bin.js";
import { int, pick, rng, caseSeed, type Rng } from "./lib/rng.js";
import { randomSeed, type FaultOptions } from "./lib/options.js";
import { looksLikeTrace, pefc } from "./lib/pefc.js";
import { joinSafetensors, splitSafetensors, tensorNames, type RawEntry, type RawFile } from "./lib/safetensors-bytes.js";
import { CaseFailure, expectThat, Tally } from "./lib/tally.js";

export const MODEL = resolve("../shared/models/tiny-chatglm2");
const CASE_LIMIT_MS = 5_000;
const replay = (seed: number, i: number) => `npm run faults -- --only checkpoints --seed ${seed} --case ${i}`;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, no) => (timer = setTimeout(() => no(new Hang(`no answer within ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(timer));
}
class Hang extends Error {}

/**
 * Opens `file` and reads every tensor. Success must mean a consistent file (ranges inside the
 * data, disjoint, each read exactly its length); failure must be a UserError naming the file.
 */
async function openAndReadAll(file: string, tensor?: string): Promise<"read" | "refused"> {
  let ck;
  try {
    ck = await openSafetensorsFile(file);
    const ranges = [...ck.tensors.values()].sort((a, b) => a.start - b.start);
    const size = readFileSync(file).length;
    for (let k = 0; k < ranges.length; k++) {
      const t = ranges[k]!;
      expectThat(t.start >= 8 && t.end <= size && t.start <= t.end, `accepted tensor '${t.name}' at bytes ${t.start}..${t.end} of a ${size}-byte file`);
      if (k > 0) expectThat(ranges[k - 1]!.end <= t.start, `accepted overlapping tensors '${ranges[k - 1]!.name}' and '${t.name}'`);
      const bytes = await readTensorBytes(t);
      expectThat(bytes.length === t.end - t.start, `read ${bytes.length} bytes of tensor '${t.name}', expected ${t.end - t.start}`);
    }
    return "read";
  } catch (e) {
    if (e instanceof CaseFailure) throw e;
    if (!(e instanceof UserError)) throw e;
    expectThat(e.message.includes(file), `the error does not name the file: ${e.message}`);
    if (tensor !== undefined && e.tensor !== undefined) expectThat(e.message.includes(`'${e.tensor}'`), `the error's tensor is not in its message: ${e.message}`);
    return "refused";
  }
}

type Edit = (f: RawFile, name: string, r: Rng) => string | void;

const DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "Q4", "f32", "", "F8_E4M3", 7, null];
const NUMBERS = [-1, 0, 1, 3, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, 0.5, -0, "8", null, true];

/** Header edits aimed at one tensor; each returns the edited header text (or undefined: edit in place). */
const EDITS: Record<string, Edit> = {
  dtype: (f, n, r) => void ((f.header[n] as RawEntry).dtype = pick(r, DTYPES)),
  "shape dim": (f, n, r) => {
    const e = f.header[n] as RawEntry;
    const shape = [...(e.shape as number[])];
    shape[int(r, 0, Math.max(0, shape.length - 1))] = pick(r, NUMBERS) as number;
    e.shape = shape;
  },
  "shape rank": (f, n, r) => {
    const e = f.header[n] as RawEntry;
    const shape = [...(e.shape as number[])];
    if (r() < 0.5) shape.push(int(r, 1, 4));
    else shape.pop();
    e.shape = r() < 0.1 ? "64" : shape;
  },
  "offset shift": (f, n, r) => {
    const e = f.header[n] as RawEntry;
    const [a, b] = e.data_offsets as [number, number];
    const d = pick(r, [-8, -4, -2, -1, 1, 2, 4, 8, 4096, f.data.length]);
    e.data_offsets = r() < 0.33 ? [a + d, b] : r() < 0.5 ? [a, b + d] : [a + d, b + d];
  },
  "offset value": (f, n, r) => {
    const e = f.header[n] as RawEntry;
    const [a, b] = e.data_offsets as [number, number];
    e.data_offsets = pick(r, [[b, a], [a], [a, b, b], [a, pick(r, NUMBERS)], [pick(r, NUMBERS), b], "0,4", null, [f.data.length, f.data.length + (b - a)]]);
  },
  "overlap": (f, n, r) => {
    const other = pick(r, tensorNames(f).filter((x) => x !== n));
    (f.header[n] as RawEntry).data_offsets = [...((f.header[other] as RawEntry).data_offsets as number[])];
    if (r() < 0.5) (f.header[n] as RawEntry).shape = (f.header[other] as RawEntry).shape;
  },
  "drop key": (f, n, r) => void delete (f.header[n] as RawEntry)[pick(r, ["dtype", "shape", "data_offsets"])],
  "entry type": (f, n, r) => void ((f.header as Record<string, unknown>)[n] = pick(r, [null, 1, "F32", [], [1, 2]])),
  "drop tensor": (f, n) => void delete f.header[n],
  metadata: (f, _n, r) => void ((f.header as Record<string, unknown>).__metadata__ = pick(r, [{ format: 1 }, "pt", [], { a: { b: 1 } }, null])),
  "duplicate name": (f, n) => {
    const text = JSON.stringify(f.header);
    const entry = JSON.stringify({ [n]: f.header[n] }).slice(1, -1);
    return text.replace(/^\{/, `{${entry},`);
  },
};

async function fileCases(t: Tally, seed: number, count: number, only?: number): Promise<void> {
  const good = readFileSync(join(MODEL, "model.safetensors"));
  const dir = mkdtempSync(join(tmpdir(), "pefc-faults-ckpt-"));
  try {
    const headerEnd = 8 + Number(good.readBigUInt64LE(0));
    const one = async (i: number) => {
      const r = rng(caseSeed(seed, i));
      const file = join(dir, `case-${i}.safetensors`);
      const kind = pick(r, ["truncate", "length", "edit", "edit", "edit", "flip"] as const);
      let bytes: Uint8Array;
      let tensor: string | undefined;
      let label: string = kind;
      if (kind === "truncate") {
        const cut = r() < 0.5 ? int(r, 0, headerEnd) : int(r, headerEnd, good.length - 1);
        bytes = good.subarray(0, cut);
        label = `truncated at byte ${cut} of ${good.length}`;
      } else if (kind === "length") {
        const f = splitSafetensors(good);
        const claim = pick(r, [0n, 1n, 7n, BigInt(headerEnd - 9), BigInt(headerEnd - 7), BigInt(good.length), 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]);
        bytes = joinSafetensors(f.header, f.data, claim);
        label = `header length claims ${claim}`;
      } else if (kind === "edit") {
        const f = splitSafetensors(good);
        const name = pick(r, tensorNames(f));
        const editName = pick(r, Object.keys(EDITS));
        const text = EDITS[editName]!(f, name, r);
        bytes = joinSafetensors(text ?? f.header, f.data);
        tensor = name;
        label = `header edit "${editName}" on '${name}'`;
      } else {
        bytes = Buffer.from(good);
        const flips = int(r, 1, 4);
        for (let k = 0; k < flips; k++) bytes[int(r, 8, headerEnd - 1)] = int(r, 0, 255);
        label = `${flips} header bytes changed`;
      }
      writeFileSync(file, bytes);
      await t.case(`checkpoints seed ${seed} case ${i}: ${label}`, replay(seed, i), async () => {
        try {
          t.add(await withTimeout(openAndReadAll(file, tensor), CASE_LIMIT_MS));
        } catch (e) {
          if (e instanceof Hang) return t.fail(`checkpoints seed ${seed} case ${i}: ${label}`, e.message, replay(seed, i), "hangs");
          throw e;
        }
      });
    };
    if (only !== undefined) return await one(only);
    for (let i = 0; i < count; i++) await one(i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- whole model folders, through the command line ----

const SPEC = (model: string) => `model "${model}";
data train "${resolve("examples/data/tokens.jsonl")}" { max_length = 16 tokens; }
lora r=2 alpha=4 on query_key_value;
train { steps = 1; batch = 2; lr = 1e-3; }
save to "out";
`;

interface FolderCase {
  name: string;
  /** Damages a copy of the model folder. */
  damage: (dir: string) => void;
  /** What the error must name (file names, tensor names); empty for a folder that must train. */
  names: string[];
}

function shard(dir: string): void {
  // Two shards and an index, as save_pretrained writes them: the first half of the tensors in each.
  const f = splitSafetensors(readFileSync(join(dir, "model.safetensors")));
  const names = tensorNames(f);
  const halves = [names.slice(0, names.length >> 1), names.slice(names.length >> 1)];
  const weightMap: Record<string, string> = {};
  halves.forEach((part, s) => {
    const file = `model-0000${s + 1}-of-00002.safetensors`;
    const header: Record<string, unknown> = {};
    const chunks: Uint8Array[] = [];
    let at = 0;
    for (const n of part) {
      const e = f.header[n] as RawEntry;
      const [a, b] = e.data_offsets as [number, number];
      chunks.push(f.data.subarray(a, b));
      header[n] = { dtype: e.dtype, shape: e.shape, data_offsets: [at, at + b - a] };
      at += b - a;
      weightMap[n] = file;
    }
    writeFileSync(join(dir, file), joinSafetensors(header, Buffer.concat(chunks)));
  });
  rmSync(join(dir, "model.safetensors"));
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2));
}

const editJson = (file: string, edit: (j: Record<string, unknown>) => void) => {
  const j = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(j);
  writeFileSync(file, JSON.stringify(j, null, 2));
};
const index = (dir: string) => join(dir, "model.safetensors.index.json");
const firstTensor = (dir: string) => tensorNames(splitSafetensors(readFileSync(join(dir, "model.safetensors"))))[0]!;

const FOLDERS: FolderCase[] = [
  { name: "the intact folder trains", damage: () => undefined, names: [] },
  { name: "the intact folder, sharded, trains", damage: shard, names: [] },
  { name: "model.safetensors cut in its data", damage: (d) => writeFileSync(join(d, "model.safetensors"), readFileSync(join(d, "model.safetensors")).subarray(0, 200_000)), names: ["model.safetensors", "truncated"] },
  { name: "model.safetensors cut in its header", damage: (d) => writeFileSync(join(d, "model.safetensors"), readFileSync(join(d, "model.safetensors")).subarray(0, 100)), names: ["model.safetensors"] },
  { name: "a 2 GB header claim", damage: (d) => { const b = readFileSync(join(d, "model.safetensors")); b.writeBigUInt64LE(2n ** 31n, 0); writeFileSync(join(d, "model.safetensors"), b); }, names: ["model.safetensors", "2147483648"] },
  { name: "config.json: hidden_size disagrees with the weights", damage: (d) => editJson(join(d, "config.json"), (j) => void (j.hidden_size = 48)), names: ["config.json", "transformer."] },
  { name: "config.json: one more layer than the weights have", damage: (d) => editJson(join(d, "config.json"), (j) => void (j.num_layers = 3)), names: ["layers.2", "config.json"] },
  { name: "config.json: ffn_hidden_size disagrees", damage: (d) => editJson(join(d, "config.json"), (j) => void (j.ffn_hidden_size = 128)), names: ["dense_h_to_4h"] },
  { name: "config.json is not JSON", damage: (d) => writeFileSync(join(d, "config.json"), "{ hidden_size: 64, "), names: ["config.json"] },
  { name: "config.json missing", damage: (d) => rmSync(join(d, "config.json")), names: ["config.json"] },
  { name: "a weight tensor with an unknown dtype", damage: (d) => { const f = splitSafetensors(readFileSync(join(d, "model.safetensors"))); const n = tensorNames(f)[3]!; (f.header[n] as RawEntry).dtype = "Q4_K"; writeFileSync(join(d, "model.safetensors"), joinSafetensors(f.header, f.data)); }, names: ["model.safetensors", "Q4_K"] },
  { name: "a weight stored as integers", damage: (d) => { const f = splitSafetensors(readFileSync(join(d, "model.safetensors"))); const n = tensorNames(f).find((x) => x.endsWith("query_key_value.weight"))!; (f.header[n] as RawEntry).dtype = "I32"; writeFileSync(join(d, "model.safetensors"), joinSafetensors(f.header, f.data)); }, names: ["query_key_value.weight", "I32"] },
  { name: "a missing shard", damage: (d) => { shard(d); rmSync(join(d, "model-00002-of-00002.safetensors")); }, names: ["model-00002-of-00002.safetensors"] },
  { name: "an index naming a tensor no shard holds", damage: (d) => { shard(d); editJson(index(d), (j) => void ((j.weight_map as Record<string, string>)["transformer.encoder.layers.9.ghost.weight"] = "model-00001-of-00002.safetensors")); }, names: ["transformer.encoder.layers.9.ghost.weight"] },
  { name: "an index without weight_map", damage: (d) => { shard(d); writeFileSync(index(d), '{"metadata": {}}'); }, names: ["model.safetensors.index.json", "weight_map"] },
  { name: "an index pointing outside the folder (..)", damage: (d) => { shard(d); editJson(index(d), (j) => { const m = j.weight_map as Record<string, string>; m[Object.keys(m)[0]!] = "../model-00001-of-00002.safetensors"; }); }, names: ["model.safetensors.index.json", "same folder"] },
  { name: "an index pointing at an absolute path", damage: (d) => { shard(d); editJson(index(d), (j) => { const m = j.weight_map as Record<string, string>; m[Object.keys(m)[0]!] = "/etc/passwd"; }); }, names: ["model.safetensors.index.json", "same folder"] },
  { name: "the same tensor in two shards", damage: (d) => { shard(d); const n = firstTensorOfShard(d); copyFileSync(join(d, "model-00001-of-00002.safetensors"), join(d, "extra.safetensors")); editJson(index(d), (j) => void ((j.weight_map as Record<string, string>)[n] = "extra.safetensors")); }, names: [] },
];

function firstTensorOfShard(d: string): string {
  return tensorNames(splitSafetensors(readFileSync(join(d, "model-00001-of-00002.safetensors"))))[0]!;
}
void firstTensor;

async function folderCases(t: Tally, verbose: boolean): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "pefc-faults-folders-"));
  try {
    for (const [k, c] of FOLDERS.entries()) {
      const dir = join(root, `m${k}`);
      mkdirSync(dir);
      for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(MODEL, f), join(dir, f));
      c.damage(dir);
      writeFileSync(join(dir, "run.peft"), SPEC(dir));
      await t.case(`checkpoint folder: ${c.name}`, `npm run faults -- --only checkpoints (folder case "${c.name}")`, async () => {
        const res = await pefc(["run", "--device", "reference", join(dir, "run.peft")], { cwd: dir, timeoutMs: 60_000 });
        t.add("folders");
        if (verbose) console.log(`  folder "${c.name}": exit ${res.code}: ${res.err.trim().split("\n")[0]}`);
        const said = `exit ${res.code}; ${res.err.trim().slice(0, 500)}`;
        if (res.timedOut) return t.fail(`checkpoint folder: ${c.name}`, "no answer within 60 s", "", "hangs");
        expectThat(!looksLikeTrace(res.err + res.out), `stack trace: ${said}`);
        if (c.names.length === 0) return expectThat(res.code === 0 || (res.code === 1 && /appears in both/.test(res.err)), said);
        expectThat(res.code === 1, said);
        for (const n of c.names) expectThat(res.err.includes(n), `the message does not name ${n}: ${said}`);
      });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A folder holding only a pickle is refused by name, or (with a .bin reader) its own cases run. */
async function folderWithoutSafetensors(t: Tally): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pefc-faults-bin-"));
  try {
    writeFileSync(join(dir, "pytorch_model.bin"), Buffer.from("PK\x03\x04not really a zip"));
    await t.case("a folder with only pytorch_model.bin", "npm run faults -- --only checkpoints", async () => {
      try {
        await openCheckpoint(dir);
      } catch (e) {
        expectThat(e instanceof UserError, `not a UserError: ${String(e)}`);
        expectThat((e as Error).message.includes(dir), (e as Error).message);
        return;
      }
      throw new CaseFailure("a folder with a damaged pytorch_model.bin opened");
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function checkpointsFamily(o: FaultOptions): Promise<Tally> {
  const t = new Tally("checkpoints");
  t.zero("crashes", "hangs");
  if (o.case !== undefined) {
    // Case I of the seed, of the safetensors and of the .bin cases alike.
    await fileCases(t, o.seed ?? 1, 0, o.case);
    await binCases(t, o);
    return t;
  }
  const seed = o.seed ?? randomSeed();
  const n = o.quick ? 200 : (o.cases ?? 600);
  if (o.seed === undefined) await fileCases(t, 1, n);
  await fileCases(t, seed, n);
  await folderCases(t, o.verbose);
  await folderWithoutSafetensors(t);
  await binCases(t, o);
  t.notes.push(o.seed === undefined ? `seeds 1 and ${seed}, ${n} file cases each` : `seed ${seed}`);
  return t;
}
