/**
 * Everything a run needs before its first step, in the order a user's mistakes should surface:
 * the spec is checked and compiled (no file read but config.json), then the base weights, the
 * adapter to start from, the tokenizer and the data are read. Any problem is a diagnostic or a
 * UserError naming the file; nothing here trains.
 */
import { dirname, resolve } from "node:path";
import type { DataSpec, Spec } from "../../check/spec.js";
import { diag, DiagnosticsError, hasErrors, sortDiagnostics } from "../../diagnostics/index.js";
import { checkSource } from "../../frontend.js";
import type { Graph } from "../../ir/index.js";
import { templateByName } from "../../models/templates.js";
import type { ModelProfile } from "../../models/types.js";
import type { PassContext } from "../../passes/context.js";
import { compileSpec } from "../../passes/compile.js";
import { stepsPerEpoch } from "../../plan/report.js";
import { loadAdapter } from "../adapter/index.js";
import { holdOut, loadDataset, type DataStats, type Example } from "../data/index.js";
import { UserError } from "../io/errors.js";
import { ByteTokenizer, loadTokenizer, type Tokenizer } from "../tokenizer/index.js";
import { initParams } from "./init-params.js";
import { openBaseWeights, type BaseWeights } from "./weights.js";

export interface Session {
  spec: Spec;
  baseDir: string;
  profile: ModelProfile;
  ctx: PassContext;
  /** Forward, backward and update ops. */
  trainGraph: Graph;
  /** Forward and loss only, for evaluation. */
  evalGraph: Graph;
  /** The base weights, checked against the graph and read one tensor at a time when asked. */
  base: BaseWeights;
  /** Starting values that are not the base weights': method parameters, initialised or from `init from` (which may also override a base tensor). */
  params: Map<string, Float32Array>;
  tokenizer?: Tokenizer;
  train: Example[];
  eval?: Example[];
  stats: { train: DataStats; eval?: DataStats };
  stepsPerEpoch: number;
  totalSteps: number;
}

export { DiagnosticsError };

function resolveTemplate(d: DataSpec, profile: ModelProfile): string {
  if ("text" in d.template) return d.template.text;
  if (d.template.name === "model") return profile.chatTemplate;
  const t = templateByName(d.template.name);
  if (t === undefined) throw new Error(`unknown template ${d.template.name} passed the checker`);
  return t;
}

async function tokenizerFor(spec: Spec, profile: ModelProfile): Promise<Tokenizer | undefined> {
  if (spec.model?.builtin !== undefined) return new ByteTokenizer();
  try {
    return await loadTokenizer(profile.source);
  } catch (e) {
    const needsText = spec.data.train?.mode === "text" || spec.data.eval?.mode === "text";
    if (needsText) throw e;
    return undefined;
  }
}

const MERGEABLE = new Set(["lora", "adalora", "ia3", "bitfit"]);

/** Reads, checks and compiles `file`, then loads what the run needs. */
export async function prepareSession(source: Uint8Array, file: string): Promise<Session> {
  const checked = checkSource(source, file);
  if (!checked.ok) throw new DiagnosticsError(checked.diagnostics);
  const spec = checked.spec;
  const baseDir = dirname(resolve(file));
  for (const e of spec.export) {
    const bad = spec.methods.find((m) => !MERGEABLE.has(m.method) || m.gated);
    if (e.what === "merged" && bad) throw new DiagnosticsError([diag("P504", file, e.span, [bad.gated ? `gated ${bad.method}` : bad.method])]);
  }
  const profileTok = await preTokenizer(spec, baseDir);
  const encode = profileTok ? (t: string) => profileTok.encode(t, { addSpecial: false }) : undefined;
  const compiled = compileSpec(spec, { baseDir, ...(encode ? { encode } : {}) });
  const diags = sortDiagnostics(compiled.diagnostics);
  if (hasErrors(diags) || !compiled.graph || !compiled.profile || !compiled.ctx) throw new DiagnosticsError(diags);
  const evalCompiled = compileSpec(spec, { baseDir, until: "require-trainable", ...(encode ? { encode } : {}) });
  const profile = compiled.profile;
  const trainGraph = compiled.graph;

  const base = await openBaseWeights(spec.model!, profile, trainGraph);
  const params = new Map<string, Float32Array>();
  if (spec.init) {
    const from = await loadAdapter(resolve(baseDir, spec.init.from), { spec, graph: trainGraph, profile });
    for (const [k, v] of from) params.set(k, v);
  }
  // Inits that copy base rows (prompt tuning from the vocabulary) read just those tensors.
  const have = new Map(params);
  for (const p of trainGraph.params) {
    const from = p.init?.kind === "rows" ? p.init.from : undefined;
    if (from && !have.has(from) && base.names.includes(from)) have.set(from, await base.readF32(from));
  }
  for (const [k, v] of initParams(trainGraph, have, spec.train.seed)) params.set(k, v);

  if (!spec.data.train) throw new DiagnosticsError([diag("P702", file, spec.train.span)]);
  const tokenizer = await tokenizerFor(spec, profile);
  const textTokenizer = tokenizer ?? new ByteTokenizer();
  const vocabSize = profile.dims.vocabSize;
  const trainData = await loadDataset(spec.data.train, { baseDir, tokenizer: textTokenizer, template: resolveTemplate(spec.data.train, profile), vocabSize });
  let train = trainData.examples;
  let evalSet: Example[] | undefined;
  let evalStats: DataStats | undefined;
  const ev = spec.data.eval;
  if (ev?.holdout) {
    const split = holdOut(train, ev.holdout, ev.seed);
    train = split.train;
    evalSet = split.eval;
  } else if (ev?.file) {
    const r = await loadDataset(ev, { baseDir, tokenizer: textTokenizer, template: resolveTemplate(ev, profile), vocabSize });
    evalSet = r.examples;
    evalStats = r.stats;
  }
  if (train.length === 0) {
    // Every record skipped under on_error = skip: say which lines, so the user can fix them.
    const st = trainData.stats;
    const why = [
      ...(st.records === 0 ? ["the file holds no record"] : []),
      ...(st.empty > 0 ? [`${st.empty} record(s) have an empty prompt or response and are dropped`] : []),
      ...(st.skipped > 0 ? [`${st.skipped} bad record(s) were skipped (on_error = skip), the first: ${st.skipReasons[0] ?? "?"}`] : []),
    ].map((x) => `; ${x}`).join("");
    throw new UserError(`${spec.data.train.file}: no usable record to train on${why}`);
  }
  const perEpoch = stepsPerEpoch(train.length, spec.train.batch, spec.train.gradAccum);
  const totalSteps = "steps" in spec.train.length ? spec.train.length.steps : perEpoch * spec.train.length.epochs;
  const session: Session = {
    spec, baseDir, profile, ctx: compiled.ctx, trainGraph, evalGraph: evalCompiled.graph!, base, params, train,
    stats: { train: trainData.stats, ...(evalStats ? { eval: evalStats } : {}) }, stepsPerEpoch: perEpoch, totalSteps,
  };
  if (tokenizer) session.tokenizer = tokenizer;
  if (evalSet) session.eval = evalSet;
  return session;
}

/** Every parameter's starting value, base weights included, in host memory (the CPU reference's need). */
export async function allParams(s: Session): Promise<Map<string, Float32Array>> {
  const all = await s.base.loadAll();
  for (const [k, v] of s.params) all.set(k, v);
  return all;
}

/** The tokenizer prompt_tuning's text init needs at compile time, when it needs one. */
async function preTokenizer(spec: Spec, baseDir: string): Promise<Tokenizer | undefined> {
  const needs = spec.methods.some((m) => m.method === "prompt_tuning" && m.options.init.kind === "text");
  if (!needs || !spec.model) return undefined;
  if (spec.model.builtin !== undefined) return new ByteTokenizer();
  return loadTokenizer(resolve(baseDir, spec.model.source));
}
