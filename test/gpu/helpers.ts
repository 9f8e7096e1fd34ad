/**
 * Shared by the GPU executor tests: one device for the folder (a device that fails to open fails
 * the tests with the P801 message), specs compiled for the training step and for evaluation,
 * starting weights with every trainable tensor non-zero (so no gradient vanishes at a zero init),
 * seeded micro-batches, and the abs+rel comparison that prints the first mismatches.
 */
import { checkSource } from "../../src/frontend.js";
import { compileSpec } from "../../src/passes/compile.js";
import type { Graph } from "../../src/ir/index.js";
import { initBuiltinWeights } from "../../src/models/builtin.js";
import type { ModelProfile } from "../../src/models/types.js";
import { uniformFill } from "../../src/runtime/reference/rng.js";
import { initParams } from "../../src/runtime/train/init-params.js";
import type { MicroBatch } from "../../src/runtime/train/backend.js";
import { expectClose } from "../kernels/helpers.js";

export { testDevice } from "../kernels/helpers.js";

export interface Compiled {
  train: Graph;
  evalGraph: Graph;
  profile: ModelProfile;
}

export function specText(model: string, body: string, train = ""): string {
  return `peft 0.1;\nmodel "builtin:${model}";\n${body}\ntrain { steps = 10; batch = 2; lr = 1e-2; ${train} }\n`;
}

export function compileBoth(source: string): Compiled {
  const fe = checkSource(source, "/tmp/gpu-test.peft");
  if (!fe.ok) throw new Error(fe.diagnostics.map((d) => d.message).join("\n"));
  const r = compileSpec(fe.spec);
  const e = compileSpec(fe.spec, { until: "require-trainable" });
  const bad = [...r.diagnostics, ...e.diagnostics].filter((d) => d.severity === "error");
  if (bad.length) throw new Error(bad.map((d) => d.message).join("\n"));
  return { train: r.graph!, evalGraph: e.graph!, profile: r.profile! };
}

/** Builtin base weights, method parameters from their inits, then every trainable tensor nudged. */
export function startWeights(g: Graph, profile: ModelProfile, seed = 3): Map<string, Float32Array> {
  const base = initBuiltinWeights(profile, seed);
  if (typeof base === "string") throw new Error(base);
  const params = new Map(base);
  for (const [k, v] of initParams(g, params, seed)) params.set(k, v);
  g.params.forEach((p, i) => {
    if (!p.trainable) return;
    const v = params.get(p.name)!.slice();
    const noise = uniformFill(new Float32Array(v.length), seed + 11, i, -0.1, 0.1);
    for (let j = 0; j < v.length; j++) v[j] = v[j]! + noise[j]!;
    params.set(p.name, v);
  });
  return params;
}

/** A micro-batch of `rows` rows of `len` tokens; the last row's tail is shorter when `ragged`. */
export function microBatch(rows: number, len: number, vocab: number, seed: number, ragged = false): MicroBatch {
  const u = uniformFill(new Float32Array(rows * len), seed, 5);
  const inputIds = Int32Array.from(u, (x) => 3 + Math.floor(x * (vocab - 3)));
  const labels = Int32Array.from(inputIds, (x, i) => (i % len < 2 ? -100 : x));
  if (ragged) for (let t = len - 3; t < len; t++) {
    inputIds[(rows - 1) * len + t] = 0;
    labels[(rows - 1) * len + t] = -100;
  }
  let lossTokens = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== -100) lossTokens++;
  return { inputIds, labels, B: rows, T: len, tokens: rows * len, lossTokens };
}

/** |got - want| <= atol + rtol·max|want| over the tensor; throws listing the first mismatches. */
export function expectNear(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: { atol: number; rtol: number }): number {
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  return expectClose(what, got, want, { atol: tol.atol + tol.rtol * scale, rtol: 0 });
}
