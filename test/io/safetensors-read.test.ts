// Reads the real stories260K checkpoint and checks it against an independent copy of the same
// weights: karpathy's llama2.c export stories260K.bin (7 int32 header fields, then raw f32 arrays
// in a fixed order). Embeddings, norms, v_proj and o_proj are stored unpermuted in both.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { openCheckpoint, readSafetensorsHeader } from "../../src/runtime/io/index.js";

const MODELS = fileURLToPath(new URL("../../../shared/models/", import.meta.url));
const STORIES = `${MODELS}stories260K/hf`;

function llama2cWeights(): { header: number[]; floats: Float32Array } {
  const buf = readFileSync(`${MODELS}stories260K/stories260K.bin`);
  const header = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(i * 4));
  const copy = new Uint8Array(buf.byteLength - 28);
  copy.set(buf.subarray(28));
  return { header, floats: new Float32Array(copy.buffer) };
}

describe("stories260K model.safetensors", () => {
  it("has the expected tensors and shapes", async () => {
    const ckpt = await openCheckpoint(STORIES);
    expect(ckpt.files).toEqual([`${STORIES}/model.safetensors`]);
    // embed + 5 layers × 9 + final norm (the output head is tied to the embedding).
    expect(ckpt.tensors.size).toBe(47);
    expect(ckpt.get("model.embed_tokens.weight").shape).toEqual([512, 64]);
    expect(ckpt.get("model.layers.4.self_attn.k_proj.weight").shape).toEqual([32, 64]);
    expect(ckpt.get("model.layers.0.mlp.down_proj.weight").shape).toEqual([64, 172]);
    expect(ckpt.get("model.norm.weight").shape).toEqual([64]);
    for (const t of ckpt.tensors.values()) expect(t.dtype).toBe("F32");
    expect(ckpt.metadata.format).toBe("pt");
    expect(() => ckpt.get("lm_head.weight")).toThrow(/no tensor 'lm_head.weight'/);
  });

  it("header offsets match the file layout", async () => {
    const h = await readSafetensorsHeader(`${STORIES}/model.safetensors`);
    expect(h.headerSize).toBe(4952);
    expect(h.fileSize).toBe(1045088);
    expect(h.tensors[0]!.name).toBe("model.embed_tokens.weight");
    expect(h.tensors[0]!.start).toBe(8 + 4952);
    expect(h.tensors[h.tensors.length - 1]!.end).toBe(1045088);
  });

  it("reads the same values as the llama2.c export", async () => {
    const { header, floats } = llama2cWeights();
    const [dim, , layers, heads, kvHeads, vocab] = header as [number, number, number, number, number, number];
    expect([dim, layers, vocab]).toEqual([64, 5, 512]);
    const kvDim = (dim * kvHeads) / heads;
    const ckpt = await openCheckpoint(STORIES);

    let at = 0;
    const take = (n: number): Float32Array => floats.subarray(at, (at += n));
    const emb = take(vocab * dim);
    const rmsAtt = take(layers * dim);
    take(layers * dim * dim); // wq (permuted in the HF export)
    take(layers * kvDim * dim); // wk (permuted)
    const wv = take(layers * kvDim * dim);
    const wo = take(layers * dim * dim);

    expect(await ckpt.readF32("model.embed_tokens.weight")).toEqual(emb);
    expect(await ckpt.readF32("model.layers.3.input_layernorm.weight")).toEqual(rmsAtt.subarray(3 * dim, 4 * dim));
    expect(await ckpt.readF32("model.layers.2.self_attn.v_proj.weight")).toEqual(wv.subarray(2 * kvDim * dim, 3 * kvDim * dim));
    expect(await ckpt.readF32("model.layers.4.self_attn.o_proj.weight")).toEqual(wo.subarray(4 * dim * dim, 5 * dim * dim));
  });

  it("every tensor is finite and of plausible magnitude", async () => {
    const ckpt = await openCheckpoint(STORIES);
    let count = 0;
    for (const name of ckpt.tensors.keys()) {
      const v = await ckpt.readF32(name);
      count += v.length;
      let max = 0;
      let nonFinite = 0;
      for (const x of v) {
        if (!Number.isFinite(x)) nonFinite++;
        max = Math.max(max, Math.abs(x));
      }
      expect(nonFinite, name).toBe(0);
      expect(max, name).toBeGreaterThan(0);
      expect(max, name).toBeLessThan(100);
    }
    // 260K parameters, by the model's name.
    expect(count).toBeGreaterThan(250_000);
    expect(count).toBeLessThan(270_000);
    expect(count * 4).toBe(1045088 - 8 - 4952);
  });
});
