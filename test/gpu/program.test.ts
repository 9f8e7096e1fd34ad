// The Program builder without a device: the memory plan's invariants on a real training graph
// (binding offsets aligned, slices inside their buffers, no dispatch binding one buffer both
// read-only and writable, reuse actually saving memory, gradients packed into arenas so one
// dispatch sums them), the f16 weight choice, and the clear internal errors for what is not done.

import { describe, expect, it } from "vitest";
import { BASELINE_CAPS, DeviceLimitError } from "../../src/codegen/wgsl/caps.js";
import { splitLargeWeights } from "../../src/codegen/wgsl/program/split.js";
import { buildProgram, chooseF16Weights, dispatchesPerStep, programPlan, programWgsl, type Program } from "../../src/codegen/wgsl/program/index.js";
import type { Graph } from "../../src/ir/index.js";
import { compileBoth, specText } from "./helpers.js";

const caps = { ...BASELINE_CAPS, f16: true };

function commands(p: Program) {
  const s = p.step!;
  return [...s.prologue, ...s.micro, ...s.accumulateFirst, ...s.accumulate, ...s.update, ...(p.eval?.commands ?? [])];
}

describe("memory plan", () => {
  const c = compileBoth(specText("tiny-llama", "freeze base; lora r=4 alpha=8 dropout=0.1;", "grad_accum = 2;"));
  const p = buildProgram(c.train, c.evalGraph, { B: 2, T: 8, caps, matmul: "register" });

  it("binds only aligned slices inside their buffers, never one buffer read-only and writable at once", () => {
    for (const cmd of commands(p)) {
      const slices = cmd.kind === "copy" ? [cmd.src, cmd.dst] : Object.values(cmd.bindings);
      for (const s of slices) {
        expect(s.offset + s.bytes).toBeLessThanOrEqual(p.buffers[s.buffer]!.bytes);
        if (cmd.kind === "dispatch") expect(s.offset % 256).toBe(0);
      }
      if (cmd.kind !== "dispatch") continue;
      const k = p.kernels[cmd.kernel]!;
      const access = new Map<number, Set<string>>();
      for (const b of k.bindings) {
        const set = access.get(cmd.bindings[b.name]!.buffer) ?? new Set();
        set.add(b.access === "read_write" ? "w" : "r");
        access.set(cmd.bindings[b.name]!.buffer, set);
      }
      for (const set of access.values()) expect(set.size).toBe(1);
    }
  });

  it("reuses activation buffers and keeps parameters, gradients and state apart", () => {
    const m = p.memory;
    expect(m.byRole.activation).toBeLessThan(m.unpooledActivationBytes / 2);
    expect(m.peakBytes).toBe(p.buffers.reduce((a, b) => a + b.bytes, 0));
    // 8 LoRA tensors (4 modules x A, B in 2 layers... tiny-llama's default targets q_proj, v_proj).
    const trainable = p.params.filter((q) => q.trainable);
    expect(trainable.length).toBe(8);
    expect(new Set(trainable.map((q) => q.buffer)).size).toBe(1);
    expect(Object.keys(p.step!.grads).sort()).toEqual(trainable.map((q) => q.name).sort());
    // One arena each: the first micro-batch's gradients are copied once, later ones summed by one dispatch.
    expect(p.step!.accumulateFirst).toHaveLength(1);
    expect(p.step!.accumulate.filter((x) => x.kind === "dispatch")).toHaveLength(1);
    const d = (cs: readonly { kind: string }[]) => cs.filter((x) => x.kind === "dispatch").length;
    expect(dispatchesPerStep(p, 2)).toBe(d(p.step!.prologue) + 2 * d(p.step!.micro) + 1 + d(p.step!.update));
  });

  it("runs once per step what reads no per-batch input (AdaLoRA's regulariser and its gradient), the rest per micro-batch", () => {
    const a = compileBoth(specText("tiny-llama", "freeze base; adalora r=2 init_r=4 alpha=8;", "grad_accum = 4;"));
    const q = buildProgram(a.train, a.evalGraph, { B: 2, T: 8, caps, matmul: "register" });
    const ops = (cs: NonNullable<Program["step"]>["micro"]) => cs.flatMap((x) => (x.kind === "dispatch" ? [x.op] : []));
    const once = ops(q.step!.prologue);
    const each = ops(q.step!.micro);
    expect(once.some((o) => o.startsWith("adalora_orth_reg"))).toBe(true);
    expect(each.some((o) => o.startsWith("adalora_orth_reg"))).toBe(false);
    // Everything that reads the batch stays per micro-batch: embeddings, attention, the loss.
    for (const o of ["embedding", "attention", "cross_entropy_grad"]) {
      expect(each).toContain(o);
      expect(once).not.toContain(o);
    }
    expect(programPlan(q)).toMatch(/step: once, before the micro-batches: \d+ dispatches/);
    const d = (cs: readonly { kind: string }[]) => cs.filter((x) => x.kind === "dispatch").length;
    expect(dispatchesPerStep(q, 4)).toBe(d(q.step!.prologue) + 4 * d(q.step!.micro) + 3 * d(q.step!.accumulate) + d(q.step!.update));
  });

  it("prints every kernel under a header and the plan with its peak", () => {
    const w = programWgsl(p);
    expect(w.match(/^\/\/ ---- kernel \d+:/gm)).toHaveLength(p.kernels.length);
    expect(w).toContain("op linear");
    const plan = programPlan(p);
    expect(plan).toContain(`${p.memory.buffers} buffers`);
    expect(plan).toMatch(/step: update: \d+ dispatches/);
  });
});

describe("f16 weights", () => {
  it("stores f16 only frozen weights read as linear weights or embedding tables (GPT-2 ties wte to the LM head)", () => {
    const c = compileBoth(specText("tiny-gpt2", "freeze base; lora r=4 alpha=8;"));
    const f16 = chooseF16Weights([c.train, c.evalGraph]);
    expect(f16.has("transformer.h.0.attn.c_attn.weight")).toBe(true);
    expect(f16.has("transformer.wte.weight")).toBe(true);
    expect(f16.has("transformer.h.0.ln_1.weight")).toBe(false);
    expect([...f16].some((n) => n.includes("lora"))).toBe(false);
  });
});

describe("errors", () => {
  it("names an op that has no lowering", () => {
    const g: Graph = {
      name: "t",
      inputs: [{ name: "x", dtype: "f32", shape: ["B", 4] }],
      params: [],
      ops: [{ op: "no_such_op", module: "m", inputs: ["x"], outputs: [{ name: "loss", dtype: "f32", shape: [] }], attrs: {} }],
      outputs: ["loss"],
    };
    expect(() => buildProgram(undefined, g, { B: 2, T: 4, caps, matmul: "register" })).toThrow(/no WGSL lowering for op 'no_such_op', needed by loss/);
  });

  it("splits a frozen weight larger than the largest storage binding, and refuses a trainable one", () => {
    const frozen = compileBoth(specText("tiny-llama", "freeze base; lora r=4 alpha=8;"));
    const small = { ...caps, maxStorageBindingBytes: 65536 };
    const p = buildProgram(frozen.train, frozen.evalGraph, { B: 2, T: 8, caps: small, matmul: "register" });
    const parts = p.params.filter((q) => q.rowsOf?.name === "model.embed_tokens.weight");
    // 81920 bytes of [320, 64] f32 in blocks of 256 rows (65536 bytes) and 64.
    expect(parts.map((q) => [q.rowsOf!.start, q.rowsOf!.rows, q.bytes])).toEqual([[0, 256, 65536], [256, 64, 16384]]);
    // A reader that cannot work in row blocks is a device limit too (exit 1, naming the tensor).
    const g: Graph = {
      name: "t",
      inputs: [{ name: "x", dtype: "f32", shape: [64, 64] }],
      params: [{ name: "w", shape: [64, 64], dtype: "f32", trainable: false, origin: "base" }],
      ops: [{ op: "mul", module: "", inputs: ["x", "w"], outputs: [{ name: "y", dtype: "f32", shape: [64, 64] }], attrs: {} }],
      outputs: ["y"],
    };
    expect(() => splitLargeWeights([g], () => 4, 4096)).toThrow(DeviceLimitError);
    expect(() => splitLargeWeights([g], () => 4, 4096)).toThrow(/w is too large for one storage binding and mul \(y\) cannot read it in parts/);
    const trained = compileBoth(specText("tiny-llama", "freeze base; unfreeze embed_tokens;"));
    expect(() => buildProgram(trained.train, trained.evalGraph, { B: 2, T: 8, caps: small, matmul: "register" })).toThrow(
      /trainable tensor model\.embed_tokens\.weight \[320, 64\] takes 81920 bytes, more than the device's largest storage binding \(65536 bytes\)/,
    );
  });
});
