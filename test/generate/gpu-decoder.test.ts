/**
 * The WebGPU decoder against the CPU reference decoder (the whole forward graph recomputed on the
 * sequence): next-token logits at every step within |gpu − ref| <= 1e-4 + 1e-4·|ref|, and identical
 * greedy generations, for each architecture with a LoRA and with a prefix adapter (loaded from
 * folders saveAdapter wrote, as pefc generate loads them), and with prompt tuning's virtual
 * tokens. Then the cache: a changed prompt is decoded from where it differs, every position
 * records the same dispatches whatever its index, each new token runs one position, and on
 * stories260K 24 tokens decode faster than 24 full recomputations (timings printed, not asserted).
 */
import { describe, expect, it } from "vitest";
import { inferenceGraph } from "../../src/codegen/wgsl/decode/inference.js";
import { buildProgram } from "../../src/codegen/wgsl/program/index.js";
import { chooseMatmulVariant, type Device } from "../../src/runtime/device/index.js";
import { ReferenceDecoder, type Decoder } from "../../src/runtime/generate/decoder.js";
import { generate } from "../../src/runtime/generate/generate.js";
import { GpuDecoder } from "../../src/runtime/generate/gpu-decoder.js";
import { loadForGeneration, type LoadedModel } from "../../src/runtime/generate/load.js";
import { ProgramExecutor } from "../../src/runtime/gpu/executor.js";
import { argmax, expectClose, STORIES, testDevice, writeAdapter } from "./helpers.js";

const TOL = { atol: 1e-4, rtol: 1e-4 };
const greedy = { maxNewTokens: 12, temperature: 0, topP: 1, seed: 0 };

async function gpuDecoder(m: LoadedModel, tokens: number, maxBindingBytes?: number): Promise<GpuDecoder> {
  return GpuDecoder.create(m.graph, m.params, { tokens, maxPositions: m.profile.dims.maxPositions, device: await testDevice(), ...(maxBindingBytes ? { maxBindingBytes } : {}) });
}

/** Feeds both decoders the reference's greedy continuation of `ids`; compares logits at each step. */
async function compareSteps(what: string, gpu: Decoder, ref: Decoder, start: number[], steps: number): Promise<number> {
  const ids = start.slice();
  let worst = 0;
  for (let t = 0; t < steps; t++) {
    const want = await ref.next(ids);
    const got = await gpu.next(ids);
    worst = Math.max(worst, expectClose(`${what}, ${ids.length} tokens`, got, want, TOL));
    expect(argmax(got), `${what}: greedy token after ${ids.length} tokens`).toBe(argmax(want));
    ids.push(argmax(want));
  }
  return worst;
}

const ADAPTERS: [string, string, string][] = [
  ["builtin:tiny-llama", "lora", "lora r=4 alpha=8 on q_proj, k_proj, v_proj, o_proj, down_proj;"],
  ["builtin:tiny-llama", "prefix", "prefix tokens=4;"],
  ["builtin:tiny-chatglm2", "lora", "lora r=4 alpha=8 on query_key_value, dense_4h_to_h;"],
  ["builtin:tiny-chatglm2", "prefix", "p_tuning_v2 tokens=3;"],
  ["builtin:tiny-gpt2", "lora", "lora r=4 alpha=8 on c_attn, c_proj;"],
  ["builtin:tiny-gpt2", "prefix", "prefix tokens=4 { projection = false; }"],
  ["builtin:tiny-llama", "prompt tuning", "prompt_tuning tokens=3;"],
];

describe("GpuDecoder matches the reference decoder", () => {
  ADAPTERS.forEach(([model, kind, method], i) => {
    it(`${model} with a ${kind} adapter: logits at every step and the greedy text`, async () => {
      const m = await loadForGeneration(model, await writeAdapter(model, method, 30 + i));
      const ref = new ReferenceDecoder(m.graph, m.params);
      const prompt = "Response: ";
      const gpu = await gpuDecoder(m, m.tokenizer.encode(prompt).length + greedy.maxNewTokens);
      try {
        // The adapter matters: without it the first logits differ.
        const base = await loadForGeneration(model, undefined);
        const first = m.tokenizer.encode(prompt);
        const a = await ref.next(first);
        const b = await new ReferenceDecoder(base.graph, base.params).next(first);
        expect(Math.max(...a.map((x, j) => Math.abs(x - b[j]!)))).toBeGreaterThan(1e-2);

        const worst = await compareSteps(`${model} ${kind}`, gpu, ref, first, greedy.maxNewTokens);
        const g = await generate(gpu, m.tokenizer, prompt, greedy);
        const r = await generate(ref, m.tokenizer, prompt, greedy);
        expect(g.ids).toEqual(r.ids);
        console.log(`${model} ${kind}: max |gpu - ref| over ${greedy.maxNewTokens} steps ${worst.toExponential(2)}`);
      } finally {
        gpu.dispose();
      }
    });
  });
});

describe("streamed base weights", () => {
  for (const [model, method] of [["builtin:tiny-llama", "prefix tokens=4;"], ["builtin:tiny-gpt2", "lora r=4 alpha=8 on c_attn;"]] as const) {
    it(`${model} with ${method.split(" ")[0]}: the base weights stay in the checkpoint until uploaded, the text is the reference's`, async () => {
      const dir = await writeAdapter(model, method, 61);
      const m = await loadForGeneration(model, dir, process.cwd(), { streamBase: true });
      const full = await loadForGeneration(model, dir);
      expect(m.base).toBeDefined();
      expect([...m.params.keys()].filter((k) => m.base!.names.includes(k))).toEqual([]);
      const prompt = "Response: ";
      const gpu = await GpuDecoder.create(m.graph, m.params, { tokens: m.tokenizer.encode(prompt).length + greedy.maxNewTokens, maxPositions: m.profile.dims.maxPositions, device: await testDevice(), base: m.base! });
      try {
        const ref = new ReferenceDecoder(full.graph, full.params);
        await compareSteps(`${model} streamed`, gpu, ref, m.tokenizer.encode(prompt), 3);
        expect((await generate(gpu, m.tokenizer, prompt, greedy)).ids).toEqual((await generate(ref, m.tokenizer, prompt, greedy)).ids);
      } finally {
        gpu.dispose();
      }
    });
  }
});

describe("weights larger than a storage binding", () => {
  it("tiny-gpt2 with its tied table and MLP split into 4 KiB row blocks generates as the reference", async () => {
    const m = await loadForGeneration("builtin:tiny-gpt2", undefined);
    const prompt = "Response: ";
    const gpu = await gpuDecoder(m, m.tokenizer.encode(prompt).length + greedy.maxNewTokens, 4096);
    try {
      expect(gpu.program.params.filter((p) => p.rowsOf).map((p) => p.rowsOf!.name)).toContain("transformer.wte.weight");
      const ref = new ReferenceDecoder(m.graph, m.params);
      await compareSteps("tiny-gpt2 split", gpu, ref, m.tokenizer.encode(prompt), 4);
      expect((await generate(gpu, m.tokenizer, prompt, greedy)).ids).toEqual((await generate(ref, m.tokenizer, prompt, greedy)).ids);
    } finally {
      gpu.dispose();
    }
  });
});

describe("the KV cache", () => {
  it("decodes a changed sequence from where it differs, and refuses one longer than the cache", async () => {
    const m = await loadForGeneration("builtin:tiny-llama", await writeAdapter("builtin:tiny-llama", "prompt_tuning tokens=2;\nlora on q_proj;", 50));
    const ref = new ReferenceDecoder(m.graph, m.params);
    const gpu = await gpuDecoder(m, 12);
    try {
      expect(gpu.maxTokens).toBe(12);
      const a = [5, 90, 91, 92, 93, 94];
      expectClose("first sequence", await gpu.next(a), await ref.next(a), TOL);
      expect(gpu.lastDispatches).toHaveLength(2 + 6); // the virtual tokens, then each token
      const b = [5, 90, 17, 18];
      expectClose("sequence that differs at token 2", await gpu.next(b), await ref.next(b), TOL);
      expect(gpu.lastDispatches).toHaveLength(2); // tokens 2 and 3 only
      const c = [5, 90, 17, 18];
      expectClose("the same sequence again", await gpu.next(c), await ref.next(c), TOL);
      expect(gpu.lastDispatches).toHaveLength(1);
      await expect(gpu.next(Array(13).fill(7))).rejects.toThrow(/more than the 12/);
    } finally {
      gpu.dispose();
    }
  });

  it("generation stops where the cache ends, and a prompt longer than the cache is refused", async () => {
    const m = await loadForGeneration("builtin:tiny-gpt2", undefined);
    const n = m.tokenizer.encode("abc").length;
    const gpu = await gpuDecoder(m, n + 2);
    try {
      const r = await generate(gpu, m.tokenizer, "abc", { ...greedy, maxNewTokens: 20 });
      const want = await generate(new ReferenceDecoder(m.graph, m.params), m.tokenizer, "abc", { ...greedy, maxNewTokens: 3 });
      expect(r.ids).toEqual(want.ids);
      await expect(generate(gpu, m.tokenizer, "abcdefgh", greedy)).rejects.toThrow(/the prompt has \d+ tokens; this decoder holds at most/);
    } finally {
      gpu.dispose();
    }
  });

  it("stories260K: constant dispatches per position, one position per new token, faster than recomputing", async () => {
    const m = await loadForGeneration(STORIES, undefined);
    const prompt = m.tokenizer.encode("Once upon a time");
    const N = 24;
    const gpu = await gpuDecoder(m, prompt.length + N);
    const full = await fullRecompute(await testDevice(), m, prompt.length + N);
    const ref = new ReferenceDecoder(m.graph, m.params);
    try {
      // Warm both (pipelines), then time N tokens each on the same greedy continuation.
      await gpu.next(prompt);
      await full.next(prompt);
      const ids = prompt.slice();
      const perToken: number[] = [];
      let t0 = performance.now();
      const before = gpu.positionsRun;
      for (let t = 0; t < N; t++) {
        const logits = await gpu.next(ids);
        perToken.push(...gpu.lastDispatches);
        ids.push(argmax(logits));
      }
      const cached = performance.now() - t0;
      // The first call re-runs the last prompt position; every later one runs only the new token.
      expect(gpu.positionsRun - before).toBe(N);
      expect(new Set(perToken)).toEqual(new Set([gpu.dispatchesPerPosition]));

      t0 = performance.now();
      for (let t = 0; t < N; t++) {
        const got = await full.next(ids.slice(0, prompt.length + t));
        expect(argmax(got)).toBe(ids[prompt.length + t]);
      }
      const recompute = performance.now() - t0;
      t0 = performance.now();
      for (let t = 0; t < N; t++) await ref.next(ids.slice(0, prompt.length + t));
      const reference = performance.now() - t0;
      console.log(
        `stories260K, ${N} tokens after a ${prompt.length}-token prompt: KV-cache decoder ${cached.toFixed(0)} ms ` +
          `(${gpu.dispatchesPerPosition} dispatches per token), full recompute on the GPU at T=${prompt.length + N} ${recompute.toFixed(0)} ms ` +
          `(${full.dispatches} dispatches per token), CPU reference recompute ${reference.toFixed(0)} ms`,
      );
      expect(m.tokenizer.decode(ids.slice(prompt.length))).toMatch(/^, there was a little girl named Lily/);
    } finally {
      gpu.dispose();
      full.dispose();
    }
  });
});

/** The baseline without a cache: the inference forward compiled at T = maxLen, run on the right-padded sequence for each token. */
async function fullRecompute(dev: Device, m: LoadedModel, T: number): Promise<{ next(ids: number[]): Promise<Float32Array>; dispatches: number; dispose(): void }> {
  const graph = inferenceGraph(m.graph);
  const program = buildProgram(undefined, undefined, { B: 1, T, caps: dev.caps, matmul: (await chooseMatmulVariant(dev)).variant }, { graph, outputs: ["logits"] });
  const exec = await ProgramExecutor.create(dev, program);
  for (const p of program.params) exec.write(p, m.params.get(p.name)!);
  const entry = program.forward!;
  const logits = entry.outputs["logits"]!;
  const V = logits.shape[2]!;
  return {
    dispatches: entry.commands.filter((c) => c.kind === "dispatch").length,
    async next(ids) {
      const padded = new Int32Array(T);
      padded.set(ids);
      exec.write(program.inputs["input_ids"]!, padded);
      exec.write(program.inputs["positions"]!, Int32Array.from({ length: T }, (_, i) => i));
      const enc = dev.gpu.createCommandEncoder();
      exec.record(enc, entry.commands, "forward");
      dev.gpu.queue.submit([enc.finish()]);
      const [row] = await exec.readMany([{ buffer: logits.buffer, offset: logits.offset + 4 * V * (ids.length - 1), bytes: 4 * V }]);
      return new Float32Array(row!);
    },
    dispose: () => exec.destroy(),
  };
}
