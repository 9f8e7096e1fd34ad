/**
 * train.py, from templates/train.py.tmpl: the spec's training settings as Python values and the
 * PEFT config as the keyword arguments of its config class. The config comes from the same
 * function that writes adapter_config.json (adapter/config.ts `adapterConfig`), so a bundle trains
 * exactly the adapter pefc would save; only the fields that say what a saved file is (peft_type,
 * base model, revision, inference mode) are left to PEFT. train.py drops, with a note, any field
 * the installed PEFT's config class does not have.
 */
import type { Spec } from "../check/spec.js";
import type { AdapterLayout } from "../runtime/adapter/index.js";
import { adapterConfig, pyFloat, type PyJson } from "../runtime/adapter/index.js";
import type { Session } from "../runtime/train/session.js";
import { modelAsWritten } from "./model-path.js";
import { py, pyCall } from "./python.js";
import { render } from "./templates.js";

export const CONFIG_CLASS: Record<string, string> = {
  LORA: "LoraConfig",
  ADALORA: "AdaLoraConfig",
  IA3: "IA3Config",
  PREFIX_TUNING: "PrefixTuningConfig",
  P_TUNING: "PromptEncoderConfig",
  PROMPT_TUNING: "PromptTuningConfig",
};

/** Fields that describe a saved adapter file rather than the training: PEFT sets them itself. */
const FILE_FIELDS = new Set(["auto_mapping", "base_model_name_or_path", "revision", "peft_type", "inference_mode"]);

export function peftKwargs(s: Session, layout: AdapterLayout, startsFromFile: boolean): Record<string, PyJson> {
  const cfg = adapterConfig({ spec: s.spec, graph: s.trainGraph, profile: s.profile, layout, baseModel: modelAsWritten(s.spec), totalStep: s.totalSteps });
  const out: Record<string, PyJson> = {};
  for (const k of Object.keys(cfg).sort()) if (!FILE_FIELDS.has(k)) out[k] = cfg[k]!;
  out["inference_mode"] = false;
  // The table was initialised by pefc (from the text's token embeddings) and is loaded from
  // START_ADAPTER; PEFT need not tokenize the text again, which would need the model's tokenizer.
  if (layout.peftType === "PROMPT_TUNING" && startsFromFile) {
    out["prompt_tuning_init"] = "RANDOM";
    out["prompt_tuning_init_text"] = null;
    out["tokenizer_name_or_path"] = null;
  }
  return out;
}

export interface TrainScriptInputs {
  session: Session;
  layout: AdapterLayout;
  engine: string;
  /** The folder from_pretrained reads: absolute, or relative to the bundle. */
  baseModel: string;
  baseModelIsBundled: boolean;
  startAdapter?: string;
}

function period(p: Spec["train"]["logEvery"]): PyJson {
  return { every: p.every, unit: p.unit };
}

function optimizer(t: Spec["train"]): PyJson {
  const o = t.optimizer;
  if (o.kind === "sgd") return { kind: "sgd", momentum: pyFloat(o.momentum), nesterov: o.nesterov, weight_decay: pyFloat(o.weightDecay) };
  return { kind: o.kind, betas: [pyFloat(o.betas[0]), pyFloat(o.betas[1])], eps: pyFloat(o.eps), weight_decay: pyFloat(o.weightDecay) };
}

export function trainScript(i: TrainScriptInputs): string {
  const s = i.session;
  const spec = s.spec;
  const t = spec.train;
  const cls = CONFIG_CLASS[i.layout.peftType]!;
  const kwargs = peftKwargs(s, i.layout, i.startAdapter !== undefined);
  const baseModel = i.baseModelIsBundled ? `os.path.join(HERE, ${py(i.baseModel)})` : py(i.baseModel);
  return render("train.py.tmpl", {
    SPEC_FILE: spec.file.split("/").pop()!,
    ENGINE: i.engine,
    PEFT_CLASS: cls,
    BASE_MODEL: baseModel,
    BASE_MODEL_NAME: py(modelAsWritten(spec)),
    TRUST_REMOTE_CODE: py(s.profile.arch === "chatglm2"),
    START_ADAPTER: py(i.startAdapter ?? null),
    SEED: py(t.seed),
    LR: py(pyFloat(t.lr)),
    OPTIMIZER: py(optimizer(t)),
    SCHEDULE: py(t.schedule),
    WARMUP: py("steps" in t.warmup ? { steps: t.warmup.steps } : { share: pyFloat(t.warmup.share) }),
    CLIP: py(pyFloat(t.clip)),
    LOG_EVERY: py(period(t.logEvery)),
    EVAL_EVERY: py(period(t.evalEvery)),
    SAVES: py(spec.save.map((sv) => ({ dir: sv.dir, every: sv.every ? period(sv.every) : null, keep: sv.keep ?? null }))),
    EXPORT_ADAPTER: py(spec.export.filter((e) => e.what === "adapter").map((e) => e.dir)),
    ADALORA: py(i.layout.peftType === "ADALORA"),
    PEFT_CONFIG: `make_config(${cls}, ${py(kwargs, "    ")})`,
  });
}
