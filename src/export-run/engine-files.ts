/**
 * The launch side of a bundle: accelerate.yaml for the engine, ds_config.json for DeepSpeed,
 * launch.sh and the README, each rendered from its template.
 */
import type { ModelProfile } from "../models/types.js";
import type { Session } from "../runtime/train/session.js";
import { modelAsWritten, modelEnvNames } from "./model-path.js";
import { py } from "./python.js";
import { pyFloat } from "../runtime/adapter/index.js";
import { render } from "./templates.js";

export const ENGINES = ["deepspeed", "fsdp", "ddp"] as const;
export type Engine = (typeof ENGINES)[number];
export const PRECISIONS = ["bf16", "fp16", "no"] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface Topology {
  engine: Engine;
  gpus: number;
  nodes: number;
  precision: Precision;
}

const ENGINE_NAME: Record<Engine, string> = { deepspeed: "DeepSpeed ZeRO-3", fsdp: "FSDP", ddp: "DDP" };

export function engineName(e: Engine): string {
  return ENGINE_NAME[e];
}

/** The decoder-layer class FSDP wraps one unit at a time. */
export function layerClass(profile: ModelProfile): string {
  const type = String(profile.config["model_type"] ?? "");
  const known: Record<string, string> = { llama: "LlamaDecoderLayer", qwen2: "Qwen2DecoderLayer", mistral: "MistralDecoderLayer", gpt2: "GPT2Block", chatglm: "GLMBlock" };
  return known[type] ?? (profile.arch === "gpt2" ? "GPT2Block" : profile.arch === "chatglm2" ? "GLMBlock" : "LlamaDecoderLayer");
}

export function accelerateYaml(t: Topology, profile: ModelProfile): string {
  const processes = t.gpus * t.nodes;
  const common = { GPUS: String(t.gpus), NODES: String(t.nodes), PROCESSES: String(processes) };
  if (t.engine === "deepspeed") return render("accelerate-deepspeed.yaml.tmpl", common);
  if (t.engine === "fsdp") return render("accelerate-fsdp.yaml.tmpl", { ...common, PRECISION: `'${t.precision}'`, LAYER_CLASS: layerClass(profile) });
  return render("accelerate-ddp.yaml.tmpl", { ...common, PRECISION: `'${t.precision}'`, DISTRIBUTED_TYPE: processes > 1 ? "MULTI_GPU" : "'NO'" });
}

export function dsConfig(t: Topology, s: Session): string {
  return render("ds_config.json.tmpl", {
    MICRO_BATCH: String(s.spec.train.batch),
    CLIP: py(pyFloat(s.spec.train.clip)),
    BF16: t.precision === "bf16" ? "true" : "false",
    FP16: t.precision === "fp16" ? "true" : "false",
  });
}

export function launchScript(t: Topology): string {
  return render("launch.sh.tmpl", { ENGINE: engineName(t.engine), GPUS: String(t.gpus), NODES: String(t.nodes), PROCESSES: String(t.gpus * t.nodes), OTHER_RANKS: otherRanks(t.nodes) });
}

/** The MACHINE_RANK values of the nodes other than the main one. */
function otherRanks(nodes: number): string {
  if (nodes === 1) return "1..M-1 on the others (written for 1 node: add --num_machines M)";
  return nodes === 2 ? "1 on the other" : `1..${nodes - 1} on the others`;
}

/** `sentencepiece`: whether data_pipeline.py reads a tokenizer.model (0.1.97 is the oldest it was tested with). */
export function requirements(sentencepiece: boolean): string {
  return render("requirements.txt", { SENTENCEPIECE: sentencepiece ? "sentencepiece>=0.1.97\n" : "" });
}

export interface ReadmeInputs {
  topology: Topology;
  session: Session;
  method: string;
  startNote: string;
  hasStart: boolean;
  bundledBase: boolean;
  /** data_pipeline.py reads a tokenizer.model with the sentencepiece package. */
  sentencepiece: boolean;
}

export function readme(i: ReadmeInputs): string {
  const s = i.session;
  const t = i.topology;
  const notes: string[] = [];
  if (t.engine === "deepspeed") {
    notes.push(
      "- DeepSpeed ZeRO-3 shards parameters, gradients and optimizer state over all processes;",
      "  `zero3_init_flag` builds the model already sharded, and every save gathers the weights",
      "  (`stage3_gather_16bit_weights_on_model_save`), so adapters are not saved empty.",
    );
  }
  if (t.engine === "fsdp") notes.push("- FSDP with `use_orig_params: false` needs trainable and frozen weights in separate units; train.py sets PEFT's `fsdp_auto_wrap_policy`. PEFT's FSDP guide does not cover prompt-learning methods.");
  if (s.spec.methods[0]?.method === "adalora" && t.engine !== "ddp") {
    notes.push("- AdaLoRA's rank allocator (`update_and_allocate`) reads each adapter weight's gradient after `optimizer.step()`. Under DeepSpeed the engine steps and clears gradients inside `accelerator.backward`, and FSDP with `use_orig_params: false` keeps them in flat shards, so the allocation may not see them; `--engine ddp` keeps PEFT's documented loop exactly.");
  }
  if (s.profile.arch === "chatglm2") {
    notes.push("- ChatGLM2 is not part of transformers: its model code comes with the checkpoint (`trust_remote_code`).");
    if (i.bundledBase) notes.push("  Copy `configuration_chatglm.py` and `modeling_chatglm.py` from THUDM/chatglm2-6b into `base_model/` (its config.json names them).");
  }
  return render("README.md.tmpl", {
    SPEC_FILE: s.spec.file.split("/").pop()!,
    ENGINE: engineName(t.engine),
    ENGINE_FLAG: t.engine,
    GPUS: String(t.gpus),
    NODES: String(t.nodes),
    PROCESSES: String(t.gpus * t.nodes),
    LAST_RANK: String(Math.max(0, t.nodes - 1)),
    PRECISION: t.precision,
    METHOD: i.method,
    MODEL: modelAsWritten(s.spec),
    MODEL_ENV: modelEnvNames(s.spec).map((n) => `    ${`export ${n}=/path/to/the/model`.padEnd(49)}# on every node: the model path is \`${modelAsWritten(s.spec)}\`\n`).join(""),
    DATA_NEEDS: i.sentencepiece ? "standard library and `sentencepiece` (the model's tokenizer.model)" : "standard library only",
    TRAIN_RECORDS: String(s.train.length),
    EVAL_RECORDS: s.eval ? `, ${s.eval.length} eval` : "",
    TOTAL_STEPS: String(s.totalSteps),
    STEPS_PER_EPOCH: String(s.stepsPerEpoch),
    BATCH: String(s.spec.train.batch),
    GRAD_ACCUM: String(s.spec.train.gradAccum),
    DS_ROW: t.engine === "deepspeed" ? "| `ds_config.json` | the DeepSpeed configuration: ZeRO-3, `auto` where Accelerate fills values in |\n" : "",
    START_ROW: i.hasStart ? "| `start/` | the adapter the run starts from, in PEFT's layout |\n" : "",
    BASE_ROW: i.bundledBase ? "| `base_model/` | the built-in base model as a Hugging Face folder (config.json + model.safetensors) |\n" : "",
    START_NOTE: i.startNote,
    ENGINE_NOTE: notes.join("\n"),
  });
}
