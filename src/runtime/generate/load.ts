/**
 * A model (and optionally an adapter) ready to generate: the base graph with the adapter's methods
 * injected, its weights, and the tokenizer.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { diag, DiagnosticsError } from "../../diagnostics/index.js";
import type { Graph } from "../../ir/index.js";
import type { Spec } from "../../check/spec.js";
import { checkSource } from "../../frontend.js";
import type { ModelProfile } from "../../models/types.js";
import { compileSpec } from "../../passes/compile.js";
import { adapterSpec, loadAdapter } from "../adapter/index.js";
import { UserError } from "../io/errors.js";
import { ByteTokenizer, loadTokenizer, type Tokenizer } from "../tokenizer/index.js";
import { openBaseWeights, type BaseWeights } from "../train/weights.js";
import { initParams } from "../train/init-params.js";

export interface LoadedModel {
  spec: Spec;
  profile: ModelProfile;
  graph: Graph;
  /** The adapter's values and, unless `base` streams them, the base weights. */
  params: Map<string, Float32Array>;
  /** With `streamBase`: the base weights, read one tensor at a time when asked. */
  base?: BaseWeights;
  tokenizer: Tokenizer;
}

export interface LoadOptions {
  /** Leave the base weights in the checkpoint for a device to stream (the GPU decoder does). */
  streamBase?: boolean;
}


/** `model` is a folder or builtin:NAME; `adapter` an adapter folder. Paths relative to `cwd`. */
export async function loadForGeneration(model: string, adapter: string | undefined, cwd = process.cwd(), opts: LoadOptions = {}): Promise<LoadedModel> {
  const source = model.startsWith("builtin:") ? model : resolve(cwd, model);
  let spec: Spec;
  if (adapter !== undefined) {
    const file = join(resolve(cwd, adapter), "adapter_config.json");
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    } catch (e) {
      throw new UserError(`${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "not found; is this an adapter folder?" : `not valid JSON (${(e as Error).message})`}`, { file });
    }
    const r = adapterSpec(config, source, file);
    if (!r.spec) throw new DiagnosticsError(r.diagnostics);
    spec = r.spec;
  } else {
    spec = checkSource(`model ${JSON.stringify(source)};\ntrain { steps = 1; }\n`, "<generate>", { fragment: true }).spec;
  }
  const tokenizer = source.startsWith("builtin:") ? new ByteTokenizer() : await loadTokenizer(source);
  const encode = (t: string) => tokenizer.encode(t, { addSpecial: false });
  const compiled = compileSpec(spec, { baseDir: cwd, until: adapter !== undefined ? "inject-prompt" : "freeze", encode });
  if (!compiled.graph || !compiled.profile || compiled.diagnostics.some((d) => d.severity === "error")) {
    throw new DiagnosticsError(compiled.diagnostics.length ? compiled.diagnostics : [diag("P408", spec.file, undefined, [model, "it could not be compiled"])]);
  }
  const base = await openBaseWeights(spec.model!, compiled.profile, compiled.graph);
  const params = opts.streamBase ? new Map<string, Float32Array>() : await base.loadAll();
  if (adapter !== undefined) for (const [k, v] of await loadAdapter(resolve(cwd, adapter), { spec, graph: compiled.graph, profile: compiled.profile })) params.set(k, v);
  // What an adapter does not store (AdaLoRA's constant ranknum) starts as its init says.
  for (const [k, v] of initParams(compiled.graph, params, 0)) params.set(k, v);
  const m: LoadedModel = { spec, profile: compiled.profile, graph: compiled.graph, params, tokenizer };
  if (opts.streamBase) m.base = base;
  return m;
}
