/**
 * Warnings that need the model's config.json, for the commands that compile a spec (run, plan):
 * a length budget past the model's positions (P320), and a rank past the width of a layer it
 * adapts (P321). Neither stops a run; both are usually typos (max_length = 20000, r = 100000).
 */
import type { Spec } from "../check/spec.js";
import { diag, type Diagnostic } from "../diagnostics/index.js";
import type { ModelProfile } from "../models/types.js";
import type { MethodTarget } from "../passes/context.js";

const POSITION_KEYS = ["max_position_embeddings", "seq_length", "n_positions", "n_ctx"];

/**
 * `longest`: the longest example of the loaded data, when it is loaded (a run): then the examples
 * themselves are measured, not the length budget (which real data often leaves unused).
 */
export function modelWarnings(spec: Spec, profile: ModelProfile, targets: readonly MethodTarget[], longest?: number): Diagnostic[] {
  const out: Diagnostic[] = [];
  const positions = profile.dims.maxPositions;
  const key = POSITION_KEYS.find((k) => typeof profile.config[k] === "number") ?? "its config";
  const past = (n: number) => Number.isFinite(positions) && positions > 0 && n > positions;
  if (longest !== undefined) {
    const d = spec.data.train;
    if (d && past(longest)) out.push(diag("P320", spec.file, d.span, [`the longest example, ${longest} tokens,`, positions, profile.name, `${key} = ${positions}`]));
  } else {
    for (const d of [spec.data.train, spec.data.eval]) {
      if (!d || d.holdout) continue;
      const [what, n] = "maxLength" in d.lengths ? ["max_length", d.lengths.maxLength] : ["max_source + max_target", d.lengths.maxSource + d.lengths.maxTarget];
      if (past(n)) out.push(diag("P320", spec.file, d.span, [`${what} = ${n} tokens`, positions, profile.name, `${key} = ${positions}`]));
    }
  }
  spec.methods.forEach((m, i) => {
    if (m.method !== "lora" && m.method !== "adalora") return;
    const t = targets[i];
    if (!t) return;
    // AdaLoRA's matrices start at init_r; LoRA's overrides may change r per module (the last one wins).
    const rankOf = (path: string): number => {
      if (m.method === "adalora") return m.options.init_r;
      let r = m.options.r;
      for (const o of t.overrides) if (o.modules.includes(path) && typeof o.options["r"] === "number") r = o.options["r"];
      return r;
    };
    const over = t.modules.flatMap((x) => {
      const outFeatures = x.rows ? x.rows[1] - x.rows[0] : x.module.outFeatures;
      const width = Math.min(x.module.inFeatures, outFeatures);
      const r = rankOf(x.module.path);
      return r > width ? [{ path: x.module.path, r, width }] : [];
    });
    const first = over[0];
    if (first) out.push(diag("P321", spec.file, m.span, [first.r, first.width, first.path, over.length > 1 ? ` (and ${over.length - 1} more modules)` : ""]));
  });
  return out;
}
