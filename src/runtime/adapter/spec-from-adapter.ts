/**
 * The spec an adapter folder stands for, so `pefc generate --adapter DIR` (and chat, merge) can
 * compile the same graph the adapter was trained in. A PEFT config becomes the .peft statement that
 * means it (checked like any user file); pefc's own PEFC layout carries its spec's methods and is
 * read back directly.
 */
import type { Spec } from "../../check/spec.js";
import { checkSource } from "../../frontend.js";
import type { Diagnostic } from "../../diagnostics/index.js";
import { UserError } from "../io/errors.js";

type Config = Record<string, unknown>;

const q = (s: string) => JSON.stringify(s);

function targets(c: Config, file: string): string {
  const t = c.target_modules;
  const layers = Array.isArray(c.layers_to_transform) ? ` in layers[${(c.layers_to_transform as number[]).join(", ")}]` : typeof c.layers_to_transform === "number" ? ` in layers[${c.layers_to_transform}]` : "";
  if (typeof t === "string") return `/${t.replace(/\//g, "\\/")}/${layers}`;
  if (Array.isArray(t) && t.length > 0) return (t as string[]).map((n) => `${q(n)}${layers}`).join(", ");
  throw new UserError(`${file}: target_modules is missing; pefc needs the adapter's target modules`, { file });
}

function patternOverrides(c: Config): string {
  const rank = (c.rank_pattern ?? {}) as Record<string, unknown>;
  const alpha = (c.alpha_pattern ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(rank), ...Object.keys(alpha)])];
  return keys
    .map((k) => `override ${q(k)} { ${typeof rank[k] === "number" ? `r = ${rank[k]}; ` : ""}${typeof alpha[k] === "number" ? `alpha = ${alpha[k]}; ` : ""}}`)
    .join(" ");
}

function num(c: Config, key: string, dflt: number): number {
  const v = c[key];
  return typeof v === "number" ? v : dflt;
}

/** The .peft statement for a PEFT adapter_config.json. */
export function peftStatement(c: Config, file: string): string {
  switch (c.peft_type) {
    case "LORA": {
      const ov = patternOverrides(c);
      const opts = `r=${num(c, "r", 8)} alpha=${num(c, "lora_alpha", 8)} dropout=${num(c, "lora_dropout", 0)}${c.use_rslora === true ? " rslora=true" : ""}${typeof c.bias === "string" && c.bias !== "none" ? ` bias=${c.bias}` : ""}`;
      return `lora ${opts} on ${targets(c, file)}${ov ? ` { ${ov} }` : ";"}`;
    }
    case "ADALORA":
      return `adalora r=${num(c, "target_r", 8)} alpha=${num(c, "lora_alpha", 8)} dropout=${num(c, "lora_dropout", 0)} on ${targets(c, file)} { init_r = ${num(c, "init_r", 12)}; tinit = ${num(c, "tinit", 0)}; tfinal = ${num(c, "tfinal", 0)}; delta_t = ${num(c, "deltaT", 1)}; beta1 = ${num(c, "beta1", 0.85)}; beta2 = ${num(c, "beta2", 0.85)}; orth_reg_weight = ${num(c, "orth_reg_weight", 0.5)};${typeof c.total_step === "number" ? ` total_step = ${c.total_step};` : ""} }`;
    case "IA3": {
      const ff = Array.isArray(c.feedforward_modules) ? (c.feedforward_modules as string[]) : [];
      return `ia3 on ${targets(c, file)}${ff.length ? ` { feedforward = (${ff.map(q).join(", ")}); }` : ";"}`;
    }
    case "PREFIX_TUNING":
      return `p_tuning_v2 tokens=${num(c, "num_virtual_tokens", 20)} projection=false;`;
    case "P_TUNING":
    case "PROMPT_TUNING":
      return `prompt_tuning tokens=${num(c, "num_virtual_tokens", 20)};`;
    default:
      throw new UserError(`${file}: peft_type ${String(c.peft_type)} is not one pefc can load (LORA, ADALORA, IA3, PREFIX_TUNING, P_TUNING, PROMPT_TUNING, PEFC)`, { file });
  }
}

/**
 * The spec of an adapter, against the model `modelSource` (a folder or builtin:NAME). For a PEFC
 * adapter the methods come back as they were checked when it was trained.
 */
export function adapterSpec(config: Config, modelSource: string, file: string): { spec?: Spec; diagnostics: Diagnostic[] } {
  if (config.peft_type === "PEFC") return pefcSpec(config, modelSource, file);
  const text = `model ${q(modelSource)};\n${peftStatement(config, file)}\ntrain { steps = 1; }\n`;
  const r = checkSource(text, file);
  return r.ok ? { spec: r.spec, diagnostics: [] } : { diagnostics: r.diagnostics };
}

const SPAN = { line: 1, column: 1, endLine: 1, endColumn: 1, start: 0, end: 0 };

/** Puts a placeholder span wherever the spec's types want one (the PEFC config stores none). */
function withSpans(v: unknown, key?: string): unknown {
  if (Array.isArray(v)) return v.map((x) => withSpans(x));
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = withSpans(x, k);
    if ("kind" in o || "method" in o || "terms" in o || "action" in o || "atom" in o || "layers" in o || key === "atom") o.span ??= SPAN;
    if ("method" in o) o.line ??= 1;
    return o;
  }
  return v;
}

function pefcSpec(config: Config, modelSource: string, file: string): { spec?: Spec; diagnostics: Diagnostic[] } {
  const p = config.pefc as Record<string, unknown> | undefined;
  if (!p || !Array.isArray(p.methods)) throw new UserError(`${file}: a PEFC adapter_config.json without its methods; was it written by pefc?`, { file });
  const base = checkSource(`model ${q(modelSource)};\ntrain { steps = 1; }\n`, file, { fragment: true });
  const spec: Spec = {
    ...base.spec,
    methods: withSpans(p.methods) as Spec["methods"],
    hybrids: withSpans(p.hybrids ?? []) as Spec["hybrids"],
    freeze: withSpans(p.freeze ?? []) as Spec["freeze"],
    selects: withSpans(p.selects ?? {}) as Spec["selects"],
  };
  return { spec, diagnostics: base.diagnostics };
}
