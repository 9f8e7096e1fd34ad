/**
 * From a checked spec to the compiled graph: load the model profile (config.json only), build its
 * base graph, run the pipeline. Pure apart from reading config.json (and tokenizer.json when a
 * method needs text tokenized).
 */
import { dirname } from "node:path";
import type { Spec } from "../check/spec.js";
import { diag, type Diagnostic } from "../diagnostics/index.js";
import type { Graph } from "../ir/index.js";
import { baseGraphUnsupported, buildBaseGraph } from "../models/graph/index.js";
import { loadProfile } from "../models/load.js";
import type { ModelProfile } from "../models/types.js";
import { newContext, type PassContext } from "./context.js";
import { runPipeline, type RunOptions } from "./pipeline.js";

export interface CompileResult {
  profile?: ModelProfile;
  graph?: Graph;
  ctx?: PassContext;
  diagnostics: Diagnostic[];
}

export interface CompileOptions extends RunOptions {
  /** Folder paths in the spec are relative to; by default the .peft file's folder. */
  baseDir?: string;
  encode?: (text: string) => number[];
  /** Fuse ops for the kernels (default true). */
  fuse?: boolean;
}

export function compileSpec(spec: Spec, opts: CompileOptions = {}): CompileResult {
  if (!spec.model) return { diagnostics: [diag("P205", spec.file, undefined, ["a model statement"])] };
  const baseDir = opts.baseDir ?? dirname(spec.file);
  const loaded = loadProfile(spec.model.source, { baseDir, file: spec.file, span: spec.model.span });
  if (!loaded.profile) return { diagnostics: loaded.diagnostics };
  const profile = loaded.profile;
  const why = baseGraphUnsupported(profile);
  if (why) return { profile, diagnostics: [...loaded.diagnostics, diag("P409", spec.file, spec.model.span, [profile.name, spec.model.source, why])] };
  const ctx = newContext(spec, profile, { ...(opts.encode ? { encode: opts.encode } : {}), ...(opts.fuse !== undefined ? { fuse: opts.fuse } : {}) });
  const graph = runPipeline(buildBaseGraph(profile), ctx, opts);
  return { profile, graph, ctx, diagnostics: [...loaded.diagnostics, ...ctx.diagnostics] };
}
