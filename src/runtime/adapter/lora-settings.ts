/**
 * Each LoRA module's r, alpha, dropout and scale after the statement's override blocks, later
 * blocks winning, exactly as inject-lora applies them: the config writer needs them for
 * rank_pattern/alpha_pattern and merging needs the scale. The override selectors are resolved again
 * against the profile (the graph keeps shapes, not alphas).
 */
import type { MethodSpec, Spec } from "../../check/spec.js";
import { resolveSelector } from "../../models/select.js";
import type { ModelProfile } from "../../models/types.js";

export interface LoraModuleSettings {
  r: number;
  alpha: number;
  dropout: number;
  /** alpha / r, or alpha / √r with rslora. */
  scale: number;
}

type Lora = Extract<MethodSpec, { method: "lora" }>;

export function loraModuleSettings(spec: Spec, profile: ModelProfile, m: Lora, modules: readonly string[]): Map<string, LoraModuleSettings> {
  const selects = new Map(Object.entries(spec.selects));
  const overrides = m.overrides.map((o) => {
    const r = resolveSelector(profile, o.selector, { file: spec.file, selects, what: "override" });
    return { paths: new Set(r.matches.map((x) => x.module.path)), options: o.options };
  });
  const out = new Map<string, LoraModuleSettings>();
  for (const path of modules) {
    let { r, alpha, dropout } = m.options;
    for (const o of overrides) {
      if (!o.paths.has(path)) continue;
      r = o.options.r ?? r;
      alpha = o.options.alpha ?? alpha;
      dropout = o.options.dropout ?? dropout;
    }
    out.set(path, { r, alpha, dropout, scale: m.options.rslora ? alpha / Math.sqrt(r) : alpha / r });
  }
  return out;
}
