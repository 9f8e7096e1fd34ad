/** Compiling .peft text for the adapter tests, deterministic values, and scratch folders. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import type { Spec } from "../../src/check/spec.js";
import { checkSource } from "../../src/frontend.js";
import type { Graph } from "../../src/ir/index.js";
import { Prng } from "../../src/models/prng.js";
import type { ModelProfile } from "../../src/models/types.js";
import { compileSpec } from "../../src/passes/compile.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const STORIES = "../shared/models/stories260K/hf";

export interface Built {
  spec: Spec;
  graph: Graph;
  profile: ModelProfile;
}

/** Front end + pipeline up to the inject passes for `body` on `model`; fails the test on any error. */
export function build(model: string, body: string, opts: { encode?: (t: string) => number[] } = {}): Built {
  const text = `peft 0.1;\nmodel "${model}";\nfreeze base;\n${body}\ntrain { steps = 15; }\n`;
  const fe = checkSource(text, join(REPO, "test/adapter/case.peft"));
  const errs = fe.diagnostics.filter((d) => d.severity === "error");
  if (errs.length) throw new Error(errs.map((d) => `${d.code} ${d.message}`).join("\n"));
  const r = compileSpec(fe.spec, { until: "inject-prompt", baseDir: REPO, ...(opts.encode ? { encode: opts.encode } : {}) });
  const bad = r.diagnostics.filter((d) => d.severity === "error");
  if (bad.length || !r.graph || !r.profile) throw new Error(bad.map((d) => `${d.code} ${d.message}`).join("\n"));
  return { spec: fe.spec, graph: r.graph, profile: r.profile };
}

/** Seeded values for every method parameter and trained base weight (ia3 vectors in [0.5, 1.5), constants as initialised, the rest in ±0.5). */
export function fillValues(graph: Graph, seed = 7): Map<string, Float32Array> {
  const rng = new Prng(seed);
  const out = new Map<string, Float32Array>();
  for (const p of graph.params) {
    if (p.origin === "base" && !p.trainable) continue;
    const n = p.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (p.init?.kind === "constant") v.fill(p.init.value);
    else for (let i = 0; i < n; i++) v[i] = p.origin === "ia3" ? 0.5 + rng.uniform() : rng.uniform() - 0.5;
    out.set(p.name, v);
  }
  return out;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), "pefc-adapter-"));
  dirs.push(d);
  return d;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
