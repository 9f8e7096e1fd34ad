import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UserError, openCheckpoint, writeSafetensors } from "../../src/runtime/io/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pefc-ckpt-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeShards(): Promise<void> {
  await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), [
    { name: "model.embed_tokens.weight", dtype: "BF16", shape: [2, 2], data: [1, 2, 3, 4] },
    { name: "model.layers.0.self_attn.q_proj.weight", dtype: "F16", shape: [2], data: [0.5, -0.25] },
  ], { format: "pt" });
  await writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), [
    { name: "model.norm.weight", dtype: "F32", shape: [2], data: [1.25, 2.5] },
    { name: "lm_head.weight", dtype: "F32", shape: [1, 2], data: [7, 8] },
  ], { format: "pt" });
}

async function writeIndex(weightMap: Record<string, string>): Promise<void> {
  await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 36 }, weight_map: weightMap }));
}

const MAP = {
  "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
  "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00002.safetensors",
  "model.norm.weight": "model-00002-of-00002.safetensors",
  "lm_head.weight": "model-00002-of-00002.safetensors",
};

async function userError(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error("no error");
}

describe("sharded checkpoints", () => {
  it("joins the shards named by weight_map into one index", async () => {
    await writeShards();
    await writeIndex(MAP);
    const c = await openCheckpoint(dir);
    expect([...c.tensors.keys()].sort()).toEqual(Object.keys(MAP).sort());
    expect(c.files.map((f) => f.slice(dir.length + 1)).sort()).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
    const e = c.get("model.embed_tokens.weight");
    expect(e.file).toBe(join(dir, "model-00001-of-00002.safetensors"));
    expect([e.dtype, e.shape]).toEqual(["BF16", [2, 2]]);
    expect(Array.from(await c.readF32("model.embed_tokens.weight"))).toEqual([1, 2, 3, 4]);
    expect(Array.from(await c.readF32("model.layers.0.self_attn.q_proj.weight"))).toEqual([0.5, -0.25]);
    expect(Array.from(await c.readF32("model.norm.weight"))).toEqual([1.25, 2.5]);
    expect(Array.from(await c.readF32("lm_head.weight"))).toEqual([7, 8]);
  });

  it("prefers the index over a stray model.safetensors", async () => {
    await writeShards();
    await writeIndex(MAP);
    await writeSafetensors(join(dir, "model.safetensors"), [{ name: "other", dtype: "F32", shape: [1], data: [0] }]);
    expect((await openCheckpoint(dir)).tensors.has("other")).toBe(false);
  });

  it("a tensor listed in the index but absent from its shard names both", async () => {
    await writeShards();
    await writeIndex({ ...MAP, "model.norm.weight": "model-00001-of-00002.safetensors" });
    const u = await userError(openCheckpoint(dir));
    expect(u.tensor).toBe("model.norm.weight");
    expect(u.message).toMatch(/model-00001-of-00002.safetensors: tensor 'model.norm.weight' is listed in model.safetensors.index.json but missing/);
  });

  it("a missing shard names the file", async () => {
    await writeShards();
    await writeIndex({ ...MAP, extra: "model-00003-of-00003.safetensors" });
    const u = await userError(openCheckpoint(dir));
    expect(u.message).toMatch(/model-00003-of-00003.safetensors: missing shard: model.safetensors.index.json maps 1 tensor \(.extra.\) to model-00003-of-00003.safetensors/);
  });

  it("a corrupt shard names the shard", async () => {
    await writeShards();
    await writeIndex(MAP);
    await writeFile(join(dir, "model-00002-of-00002.safetensors"), Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
    const u = await userError(openCheckpoint(dir));
    expect(u.file).toBe(join(dir, "model-00002-of-00002.safetensors"));
  });

  it("a broken index names the index", async () => {
    await writeShards();
    await writeFile(join(dir, "model.safetensors.index.json"), "{ not json");
    expect((await userError(openCheckpoint(dir))).message).toMatch(/model.safetensors.index.json: not valid JSON/);
    await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { a: "../x.safetensors" } }));
    expect((await userError(openCheckpoint(dir))).message).toMatch(/weight_map entry for tensor 'a' must be a file name/);
  });

  it("a folder without weights, and a missing folder", async () => {
    expect((await userError(openCheckpoint(dir))).message).toMatch(/no weights found: expected model.safetensors.index.json, model.safetensors, pytorch_model.bin.index.json, pytorch_model.bin/);
    expect((await userError(openCheckpoint(join(dir, "absent")))).message).toMatch(/absent: no such model folder/);
  });
});
