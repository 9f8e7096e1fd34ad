/**
 * Shared by the generation tests: one device for the folder (a device that fails to open fails the
 * tests with the P801 message), scratch folders, adapters written through saveAdapter with seeded
 * non-zero values, and the abs+rel comparison that prints the first mismatches.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import { checkSource } from "../../src/frontend.js";
import { compileSpec } from "../../src/passes/compile.js";
import { saveAdapter } from "../../src/runtime/adapter/index.js";
import { uniformFill } from "../../src/runtime/reference/rng.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const STORIES = join(REPO, "../shared/models/stories260K/hf");

export { testDevice } from "../kernels/helpers.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), "pefc-generate-"));
  dirs.push(d);
  return d;
}

/**
 * An adapter folder for `body` on `model`: every method parameter seeded in ±0.5 (IA3 vectors
 * around 1, constants as initialised), so none is zero and each changes the logits.
 */
export async function writeAdapter(model: string, body: string, seed: number): Promise<string> {
  const text = `peft 0.1;\nmodel "${model}";\nfreeze base;\n${body}\ntrain { steps = 2; }\n`;
  const fe = checkSource(text, join(REPO, "test/generate/case.peft"));
  const errs = fe.diagnostics.filter((d) => d.severity === "error");
  if (errs.length) throw new Error(errs.map((d) => `${d.code} ${d.message}`).join("\n"));
  const r = compileSpec(fe.spec, { until: "inject-prompt", baseDir: REPO });
  if (!r.graph || !r.profile || r.diagnostics.some((d) => d.severity === "error")) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  const values = new Map<string, Float32Array>();
  r.graph.params.forEach((p, i) => {
    if (p.origin === "base" && !p.trainable) return;
    const v = uniformFill(new Float32Array(p.shape.reduce((a, b) => a * b, 1)), seed, i, -0.5, 0.5);
    if (p.init?.kind === "constant") v.fill(p.init.value);
    else if (p.origin === "ia3") for (let j = 0; j < v.length; j++) v[j] = 1 + v[j]!;
    values.set(p.name, v);
  });
  const dir = join(scratch(), "adapter");
  await saveAdapter(dir, { spec: fe.spec, graph: r.graph, profile: r.profile, values, baseModel: model, extra: { totalStep: 2 } });
  return dir;
}

/** |got - want| <= atol + rtol·|want| elementwise; returns the largest difference. */
export { expectClose } from "../kernels/helpers.js";

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
