import { describe, expect, it } from "vitest";
import { arity } from "../../src/ir/opdef.js";
import { inferOp, OPS } from "../../src/ir/ops.js";
import type { DType, Shape, TensorType } from "../../src/ir/shape.js";

const t = (dtype: DType, ...shape: Shape): TensorType => ({ dtype, shape });
const f32 = (...s: Shape) => t("f32", ...s);
const i32 = (...s: Shape) => t("i32", ...s);

/** The single output type as `f32[B,T,64]`, or the rule's error message. */
function one(op: string, ins: TensorType[], attrs: Record<string, unknown> = {}): string {
  const r = inferOp(op, ins, attrs as never);
  if (typeof r === "string") return `error: ${r}`;
  return r.map((x) => `${x.dtype}[${x.shape.join(",")}]`).join(" ");
}

describe("op table", () => {
  it("gives every op a doc line and well-formed input slots", () => {
    for (const [name, def] of Object.entries(OPS)) {
      expect(def.doc.length, name).toBeGreaterThan(5);
      expect(def.doc.includes("\n"), name).toBe(false);
      const { min, max } = arity(def);
      expect(min, name).toBeLessThanOrEqual(max);
    }
    expect(arity(OPS["linear"]!)).toEqual({ min: 2, max: 3 });
    expect(arity(OPS["attention"]!)).toEqual({ min: 3, max: 5 });
    expect(arity(OPS["concat"]!)).toEqual({ min: 1, max: Infinity });
    expect(arity(OPS["full"]!)).toEqual({ min: 0, max: 0 });
  });

  it("rejects unknown ops, wrong arity and bad attributes generically", () => {
    expect(one("matmul4", [])).toBe("error: unknown op 'matmul4'");
    expect(one("toString", [])).toBe("error: unknown op 'toString'");
    expect(one("linear", [f32("B", "T", 4)])).toBe("error: takes 2 to 3 inputs (x, weight, bias?), got 1");
    expect(one("silu", [f32(2), f32(2)])).toBe("error: takes 1 inputs (x), got 2");
    expect(one("scale", [f32(2)])).toBe("error: missing attribute 'factor'");
    expect(one("scale", [f32(2)], { factor: "2" })).toBe('error: attribute \'factor\' must be float, got "2"');
    expect(one("scale", [f32(2)], { factor: 2, bias: 1 })).toBe("error: unknown attribute 'bias'");
    expect(one("rope", [f32("B", "T", 4, 8), i32("B", "T")], { mode: "neox", rotary_dim: 8, theta: 1e4 })).toBe(
      'error: attribute \'mode\' must be "half" | "interleaved", got "neox"',
    );
    expect(one("split", [f32(4)], { axis: 0, sizes: [1.5, 2.5] })).toMatch(/attribute 'sizes' must be ints/);
  });
});

describe("shape rules", () => {
  it("embedding", () => {
    expect(one("embedding", [i32("B", "T"), f32(320, 64)])).toBe("f32[B,T,64]");
    expect(one("embedding", [i32("B", "T"), t("f16", 320, 64)])).toBe("f32[B,T,64]");
    expect(one("embedding", [i32("B", "T"), f32(8, 320)], { transposed: true })).toBe("f32[B,T,8]");
    expect(one("embedding", [f32("B", "T"), f32(320, 64)])).toBe("error: ids must be i32, got f32[B,T]");
    expect(one("embedding", [i32("B", "T"), f32(320)])).toBe("error: table must have rank 2, got f32[320]");
  });

  it("linear, plain, transposed (Conv1D) and with bias", () => {
    expect(one("linear", [f32("B", "T", 64), f32(128, 64)])).toBe("f32[B,T,128]");
    expect(one("linear", [f32("B", "T", 64), f32(64, 96)], { transposed: true })).toBe("f32[B,T,96]");
    expect(one("linear", [f32("B", "T", 64), f32(128, 64), f32(128)])).toBe("f32[B,T,128]");
    expect(one("linear", [f32("B", "T", 64), t("f16", 128, 64)])).toBe("f32[B,T,128]");
    expect(one("linear", [t("f16", "B", "T", 64), t("f16", 128, 64)])).toBe("f16[B,T,128]");
    expect(one("linear", [f32("B", "T", 64), f32(128, 63)])).toBe(
      "error: x f32[B,T,64] does not fit weight f32[128,63]: in features 63",
    );
    expect(one("linear", [f32("B", "T", 64), f32(96, 64)], { transposed: true })).toMatch(/does not fit weight f32\[96,64\] \(transposed\)/);
    expect(one("linear", [f32("B", "T", 64), f32(128, 64), f32(127)])).toBe(
      "error: bias f32[127] does not match out features 128",
    );
    expect(one("linear", [i32("B", "T", 64), f32(128, 64)])).toBe("error: x must be f32 or f16, got i32[B,T,64]");
  });

  it("add and mul broadcast from the trailing axis", () => {
    expect(one("add", [f32("B", "T", 64), f32("B", "T", 64)])).toBe("f32[B,T,64]");
    expect(one("mul", [f32("B", "T", 64), f32(64)])).toBe("f32[B,T,64]");
    expect(one("mul", [f32("B", "T", 1), f32("B", "T", 64)])).toBe("f32[B,T,64]");
    expect(one("mul", [f32(8, 64), f32(8, 1)])).toBe("f32[8,64]");
    expect(one("add", [f32("B", "T", 64), f32(63)])).toBe("error: cannot broadcast [B,T,64] with [63]");
    expect(one("add", [f32("B", "T", 64), f32("B", "T+1", 64)])).toBe("error: cannot broadcast [B,T,64] with [B,T+1,64]");
  });

  it("norms need a weight (and bias) as wide as the last axis", () => {
    expect(one("rmsnorm", [f32("B", "T", 64), f32(64)], { eps: 1e-5 })).toBe("f32[B,T,64]");
    expect(one("rmsnorm", [f32("B", "T", 64), f32(32)], { eps: 1e-5 })).toMatch(/does not match x/);
    expect(one("layernorm", [f32("B", "T", 64), f32(64), f32(64)], { eps: 1e-5 })).toBe("f32[B,T,64]");
    expect(one("layernorm", [f32("B", "T", 64), f32(64), f32(32)], { eps: 1e-5 })).toMatch(/do not match x/);
  });

  it("rope checks positions and the rotated width", () => {
    const a = { mode: "interleaved", rotary_dim: 64, theta: 10000 };
    expect(one("rope", [f32("B", "T", 32, 128), i32("B", "T")], a)).toBe("f32[B,T,32,128]");
    expect(one("rope", [f32("B", "T", 32, 128), i32("B", "T+1")], a)).toBe("error: positions i32[B,T+1] must be [B,T]");
    expect(one("rope", [f32("B", "T", 32, 128), f32("B", "T")], a)).toBe("error: positions must be i32, got f32[B,T]");
    expect(one("rope", [f32("B", "T", 2, 16), i32("B", "T")], { ...a, rotary_dim: 32 })).toBe(
      "error: rotary_dim 32 exceeds head dim 16",
    );
    expect(one("rope", [f32("B", "T", 2, 16), i32("B", "T")], { ...a, rotary_dim: 7 })).toBe(
      "error: rotary_dim 7 must be even and positive",
    );
    expect(one("rope", [f32("B", "T", 512), i32("B", "T")], a)).toBe("error: x must have rank 4, got f32[B,T,512]");
  });

  it("attention groups query heads over kv heads and takes prefix keys/values", () => {
    const q = f32("B", "T", 32, 128);
    const kv = f32("B", "T", 2, 128);
    const a = { causal: true, scale: 0.125 };
    expect(one("attention", [q, kv, kv], a)).toBe("f32[B,T,32,128]");
    expect(one("attention", [q, f32("B", "T", 3, 128), f32("B", "T", 3, 128)], a)).toBe(
      "error: 32 query heads cannot be grouped over 3 key/value heads",
    );
    expect(one("attention", [q, f32("B", "T", 2, 64), kv], a)).toMatch(/^error: k f32\[B,T,2,64\] does not fit q/);
    expect(one("attention", [q, kv, f32("B", "T+1", 2, 128)], a)).toMatch(/^error: v f32\[B,T\+1,2,128\] does not fit k/);
    const pk = f32(20, 2, 128);
    expect(one("attention", [q, kv, kv, pk, pk], a)).toBe("f32[B,T,32,128]");
    expect(one("attention", [q, kv, kv, f32("B", 20, 2, 128), f32("B", 20, 2, 128)], a)).toBe("f32[B,T,32,128]");
    expect(one("attention", [q, kv, kv, pk], a)).toBe("error: prefix_k needs prefix_v");
    expect(one("attention", [q, kv, kv, f32(20, 32, 128), f32(20, 32, 128)], a)).toBe(
      "error: prefix_k f32[20,32,128] must be [P,2,128] or [B,P,2,128]",
    );
    expect(one("attention", [q, kv, kv, pk, f32(21, 2, 128)], a)).toBe(
      "error: prefix_k f32[20,2,128] and prefix_v f32[21,2,128] differ in length",
    );
  });

  it("reshape compares element counts for every B and T", () => {
    expect(one("reshape", [f32("B", "T", 64)], { shape: ["B", "T", 4, 16] })).toBe("f32[B,T,4,16]");
    expect(one("reshape", [f32("B", "T", 64)], { shape: ["T", "B", 64] })).toBe("f32[T,B,64]");
    expect(one("reshape", [f32("B", "T", 64)], { shape: ["B", "T", 4, 15] })).toBe(
      "error: cannot reshape f32[B,T,64] to [B,T,4,15]: element counts differ",
    );
    expect(one("reshape", [f32("B", "T", 64)], { shape: ["B", 64] })).toMatch(/element counts differ/);
    expect(one("reshape", [f32("B", "T+20", 4, 16)], { shape: ["B", "20+T", 64] })).toBe("f32[B,T+20,64]");
  });

  it("split_heads and merge_heads leave the leading axes alone", () => {
    expect(one("split_heads", [f32("B", "T+5", 4608)], { heads: 36 })).toBe("f32[B,T+5,36,128]");
    expect(one("split_heads", [f32("B", "T", 64)], { heads: 3 })).toBe("error: last axis of f32[B,T,64] does not split into 3 heads");
    expect(one("merge_heads", [f32("B", "T+5", 36, 128)])).toBe("f32[B,T+5,4608]");
    expect(one("merge_heads", [f32("B", "T", "H", 128)])).toBe("error: x f32[B,T,H,128] must end in numeric [H,hd] axes");
  });

  it("split, slice, concat, broadcast", () => {
    expect(one("split", [f32("B", "T", 4608)], { axis: -1, sizes: [4096, 256, 256] })).toBe(
      "f32[B,T,4096] f32[B,T,256] f32[B,T,256]",
    );
    expect(one("split", [f32("B", "T", 4608)], { axis: -1, sizes: [4096, 256, 255] })).toBe(
      "error: sizes sum to 4607 but axis 2 of f32[B,T,4608] is 4608",
    );
    expect(one("split", [f32("B", "T", 8)], { axis: 3, sizes: [8] })).toBe("error: axis 3 out of range for f32[B,T,8]");
    expect(one("slice", [f32("B", "T+20", 64)], { axis: 1, start: 20, end: "T+20" })).toBe("f32[B,T,64]");
    expect(one("slice", [f32("B", 20, 64)], { axis: -1, start: 0, end: 32 })).toBe("f32[B,20,32]");
    expect(one("slice", [f32("B", 20, 64)], { axis: 1, start: 0, end: 30 })).toMatch(/out of range for axis 1/);
    expect(one("concat", [f32("B", 20, 64), f32("B", "T", 64)], { axis: 1 })).toBe("f32[B,T+20,64]");
    expect(one("concat", [i32("B", 20), i32("B", "T")], { axis: -1 })).toBe("i32[B,T+20]");
    expect(one("concat", [f32("B", 20, 64), f32("B", "T", 32)], { axis: 1 })).toMatch(/does not fit xs\[0\]/);
    expect(one("concat", [f32("B", 20, 64), t("f16", "B", "T", 64)], { axis: 1 })).toMatch(/differs in dtype/);
    expect(one("broadcast", [f32(20, 64)], { shape: ["B", 20, 64] })).toBe("f32[B,20,64]");
    expect(one("broadcast", [f32(20, 64)], { shape: ["B", 21, 64] })).toBe("error: cannot broadcast f32[20,64] to [B,21,64]");
  });

  it("full, activations, swiglu, dropout, mean_seq", () => {
    expect(one("full", [], { shape: ["B", 20], value: -100, dtype: "i32" })).toBe("i32[B,20]");
    expect(one("full", [], { shape: [2], value: 0.5, dtype: "i32" })).toBe("error: value 0.5 is not an integer");
    for (const u of ["silu", "gelu_tanh", "relu", "tanh", "sigmoid"]) {
      expect(one(u, [f32("B", "T", 7)])).toBe("f32[B,T,7]");
      expect(one(u, [i32("B", "T", 7)])).toBe("error: x must be f32 or f16, got i32[B,T,7]");
    }
    expect(one("swiglu", [f32("B", "T", 27392)])).toBe("f32[B,T,13696]");
    expect(one("swiglu", [f32("B", "T", 27391)])).toBe("error: last axis of f32[B,T,27391] must be even");
    expect(one("dropout", [f32("B", "T", 8)], { p: 0.1, stream: "x" })).toBe("f32[B,T,8]");
    expect(one("dropout", [f32("B", "T", 8)], { p: 1, stream: "x" })).toBe("error: p must be in [0, 1), got 1");
    expect(one("mean_seq", [f32("B", "T", 64)])).toBe("f32[B,64]");
    expect(one("scale", [f32("B", "T", 8)], { factor: 2 })).toBe("f32[B,T,8]");
  });

  it("cross_entropy takes [B,T,V] logits and [B,T] i32 labels to an f32 scalar", () => {
    const a = { ignore_index: -100 };
    expect(one("cross_entropy", [f32("B", "T", 320), i32("B", "T")], a)).toBe("f32[]");
    expect(one("cross_entropy", [f32("B", "T+20", 320), i32("B", "20+T")], a)).toBe("f32[]");
    expect(one("cross_entropy", [f32("B", "T+20", 320), i32("B", "T")], a)).toBe(
      "error: labels i32[B,T] must be [B,T+20] to fit logits f32[B,T+20,320]",
    );
    expect(one("cross_entropy", [f32("B", "T", 320), f32("B", "T")], a)).toBe("error: labels must be i32, got f32[B,T]");
  });
});
