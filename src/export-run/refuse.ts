/**
 * Which runs PEFT can take over. The rule is pefc's own adapter layout: a run whose adapter pefc
 * saves in PEFT's layout (adapter/layout.ts) is one PEFT can train and pefc can read back; any
 * other (saved as "PEFC") is refused before anything is written, naming the method and what PEFT
 * has instead.
 */
import type { MethodSpec, Spec } from "../check/spec.js";
import { diag, type Diagnostic } from "../diagnostics/index.js";
import type { Graph } from "../ir/index.js";
import type { ModelProfile } from "../models/types.js";
import { adapterLayout } from "../runtime/adapter/index.js";

const INSTEAD = {
  adapter: "PEFT has no bottleneck adapters; its nearest methods are LoRA on the same blocks (`lora on @ffn_out`) and IA3",
  bitfit: "PEFT has no BitFit method; LoRA with `bias = all` (LoraConfig bias=\"all\") trains every bias beside a low-rank update",
  mam: "PEFT has no MAM; it has prefix tuning alone (`prefix`) and LoRA alone",
  unipelt: "PEFT has no UniPELT and no gates; it has LoRA, prefix tuning and IA3, each alone and ungated",
  combine: "PEFT trains one method per model; export each method as a run of its own",
  gated: "PEFT has no gates; drop `gate = true`",
  several: "PEFT trains one method per model: merge the statements into one (LoRA overrides become rank_pattern/alpha_pattern) or export them one at a time",
  base: "PEFT keeps base weights frozen beside an adapter (its modules_to_save is not exported); drop the unfreeze or train the run with `pefc run`",
  layers: "PEFT's prefix tuning covers every layer; drop the layer selector",
  lstm: "pefc trains only the MLP prompt encoder; use `encoder = mlp`",
} as const;

function label(m: MethodSpec): string {
  return m.method === "adapter" ? `${m.variant} adapters` : m.method;
}

/** Undefined when PEFT can train the run; otherwise the diagnostic that refuses it. */
export function refusal(spec: Spec, graph: Graph, profile: ModelProfile): Diagnostic | undefined {
  const layout = adapterLayout(spec, graph, profile);
  if (layout.peftType !== "PEFC") return undefined;
  const at = (what: string, instead: string, span = spec.methods[0]?.span) => diag("P508", spec.file, span, [what, instead]);
  const h = spec.hybrids[0];
  if (h) return at(h.gated ? `gated ${h.kind}` : h.kind, h.gated && h.kind === "combine" ? INSTEAD.gated : INSTEAD[h.kind], h.span);
  const gated = spec.methods.find((m) => m.gated);
  if (gated) return at(`gated ${label(gated)}`, INSTEAD.gated, gated.span);
  const own = spec.methods.find((m) => m.method === "adapter" || m.method === "bitfit");
  if (own) return at(label(own), own.method === "adapter" ? INSTEAD.adapter : INSTEAD.bitfit, own.span);
  if (spec.methods.length > 1) return at(`${spec.methods.length} methods in one run (${spec.methods.map(label).join(", ")})`, INSTEAD.several, spec.methods[1]!.span);
  if (spec.methods.length === 0) return at("a run that only unfreezes base weights", INSTEAD.base, spec.freeze.find((f) => f.action === "unfreeze")?.span);
  const reason = layout.reason ?? "this run";
  const m = spec.methods[0]!;
  if (reason.startsWith("trained base weights")) return at(reason, INSTEAD.base, spec.freeze.find((f) => f.action === "unfreeze")?.span ?? m.span);
  if (reason.includes("some layers")) return at(reason, INSTEAD.layers, m.span);
  if (reason.includes("LSTM")) return at(reason, INSTEAD.lstm, m.span);
  return at(reason, "train it with `pefc run`", m.span);
}
