/**
 * `pefc export-run`: a checked .peft run as a self-contained folder for transformers + PEFT +
 * Accelerate. Everything that can refuse the run (the spec, the data, a method PEFT lacks, an
 * output folder that is not ours) is settled before the first byte is written; the folder is then
 * built aside and swapped in whole.
 *
 * Contents: train.py, data_pipeline.py + data_config.json + data/, accelerate.yaml, ds_config.json
 * (DeepSpeed), launch.sh, requirements.txt, README.md, start/ (the adapter the run starts from:
 * pefc's own initial values or the spec's `init from`, so both runs start from the same numbers),
 * base_model/ (a built-in model written out as a Hugging Face folder) or tokenizer/ (the files the
 * data pipeline tokenizes with). start/ and base_model/ are plain folders a user ships: the
 * bundle's own marker stands for the whole, so they carry no .pefc-output of their own. A model
 * path written with environment variables stays written so (model-path.ts).
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { DiagnosticsError, type Diagnostic } from "../diagnostics/index.js";
import type { Graph } from "../ir/index.js";
import { adapterFiles, adapterLayout, CONFIG_FILE, hfCheckpointFiles, loadAdapter, WEIGHTS_FILE, withShapes, type AdapterLayout } from "../runtime/adapter/index.js";
import { replaceDirAtomic } from "../runtime/io/atomic.js";
import { serializeSafetensors } from "../runtime/io/safetensors-write.js";
import { prepareSession, type Session } from "../runtime/train/session.js";
import { writeDataFiles } from "./data-files.js";
import { accelerateYaml, dsConfig, launchScript, readme, requirements, type Topology } from "./engine-files.js";
import { markerText, MARKER, outputProblem } from "./output-dir.js";
import { refusal } from "./refuse.js";
import { modelAsWritten } from "./model-path.js";
import { trainScript } from "./train-script.js";

export interface ExportRunOptions extends Topology {
  to: string;
  overwrite: boolean;
  /** An adapter folder to start from instead of the spec's start: a pefc checkpoint-N or any adapter `init from` takes. */
  from?: string;
}

export interface ExportRunResult {
  dir: string;
  files: string[];
}

const CHATGLM_AUTO_MAP = {
  AutoConfig: "configuration_chatglm.ChatGLMConfig",
  AutoModel: "modeling_chatglm.ChatGLMForConditionalGeneration",
  AutoModelForCausalLM: "modeling_chatglm.ChatGLMForConditionalGeneration",
};

const PROMPT_ENCODER_FILE = "prompt_encoder.safetensors";

/** Checks everything, then writes the bundle. Throws DiagnosticsError or UserError on a user's mistake. */
export async function exportRun(source: Uint8Array, file: string, o: ExportRunOptions): Promise<ExportRunResult> {
  const s = await prepareSession(source, file);
  const refused = refusal(s.spec, s.trainGraph, s.profile);
  if (refused) throw new DiagnosticsError([refused]);
  const out = resolve(o.to);
  const problem: Diagnostic | undefined = outputProblem(out, o.overwrite);
  if (problem) throw new DiagnosticsError([problem]);
  const layout = adapterLayout(s.spec, s.trainGraph, s.profile);
  if (o.from !== undefined) {
    for (const [k, v] of await loadAdapter(resolve(o.from), { spec: s.spec, graph: s.trainGraph, profile: s.profile })) s.params.set(k, v);
  }
  const files: string[] = [];
  await replaceDirAtomic(out, async (tmp) => {
    const put = async (name: string, text: string | Uint8Array) => {
      await mkdir(join(tmp, name, ".."), { recursive: true });
      await writeFile(join(tmp, name), text);
      files.push(name);
    };
    await put(MARKER, markerText(basename(s.spec.file), o.engine));
    const builtin = s.spec.model!.builtin !== undefined;
    if (builtin) {
      const config = s.profile.arch === "chatglm2" ? { ...s.profile.config, auto_map: CHATGLM_AUTO_MAP } : s.profile.config;
      const hf = hfCheckpointFiles(withShapes(await s.base.loadAll(), s.profile), config);
      await put("base_model/config.json", hf.config);
      await put("base_model/model.safetensors", joined(hf.weights));
    }
    const dataFiles = await writeDataFiles(tmp, s);
    files.push(...dataFiles);
    for (const [name, bytes] of await startFiles(s, layout)) await put(`start/${name}`, bytes);
    await put("train.py", trainScript({ session: s, layout, engine: o.engine, baseModel: builtin ? "base_model" : s.spec.model!.asWritten ?? s.profile.source, baseModelIsBundled: builtin, startAdapter: "start" }));
    await put("accelerate.yaml", accelerateYaml(o, s.profile));
    if (o.engine === "deepspeed") await put("ds_config.json", dsConfig(o, s));
    const sentencepiece = dataFiles.includes("tokenizer/tokenizer.model");
    await put("requirements.txt", requirements(sentencepiece));
    await put("launch.sh", launchScript(o));
    await chmod(join(tmp, "launch.sh"), 0o755);
    const startNote = o.from !== undefined
      ? `train.py loads \`start/\`, the adapter of \`${o.from}\` (given with --from) as pefc read it; the run itself starts at step 0.`
      : s.spec.init
      ? `train.py loads \`start/\`, the spec's \`init from "${s.spec.init.from}"\` adapter as pefc read it.`
      : "train.py loads `start/`, the adapter pefc initialises from the spec's seed, instead of PEFT's random init.";
    await put("README.md", readme({ topology: o, session: s, method: methodText(s), startNote, hasStart: true, bundledBase: builtin, sentencepiece }));
  });
  return { dir: out, files: files.sort() };
}

function methodText(s: Session): string {
  const m = s.spec.methods[0]!;
  return m.method === "adapter" ? `adapter ${m.variant}` : m.method;
}

/**
 * start/: the run's starting values in PEFT's layout, plus a prompt encoder's weights (PEFT saves
 * only its output). Like base_model/, it is written as plain files: the bundle is swapped in whole
 * and its own marker covers it, so the folders a user ships carry no pefc marker of their own.
 */
async function startFiles(s: Session, layout: AdapterLayout): Promise<[string, string | Uint8Array][]> {
  const values = new Map(s.params);
  for (const p of s.trainGraph.params) {
    if (p.trainable && p.origin === "base" && !values.has(p.name)) values.set(p.name, await s.base.readF32(p.name));
  }
  const a = adapterFiles({ spec: s.spec, graph: s.trainGraph, profile: s.profile, values, baseModel: modelAsWritten(s.spec), extra: { totalStep: s.totalSteps } });
  const out: [string, string | Uint8Array][] = [
    [CONFIG_FILE, a.config],
    [WEIGHTS_FILE, joined(serializeSafetensors(a.tensors, a.metadata))],
  ];
  if (layout.entries.some((e) => e.computed)) {
    const tensors = encoderParams(s.trainGraph, layout).map((p) => ({ name: p.name.slice(p.name.indexOf(".") + 1), dtype: "F32" as const, shape: [...p.shape], data: values.get(p.name)! }));
    out.push([PROMPT_ENCODER_FILE, joined(serializeSafetensors(tensors, { format: "pt" }))]);
  }
  return out;
}

function joined(chunks: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** The prompt encoder's parameters (prefix_encoder.* / prompt_encoder.*), named as PEFT's encoder module names them after the first segment. */
function encoderParams(graph: Graph, layout: AdapterLayout): Graph["params"] {
  return graph.params.filter((p) => p.method === layout.method && p.origin !== "base" && /^(prefix|prompt)_encoder\./.test(p.name));
}
