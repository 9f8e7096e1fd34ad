/**
 * pefc as a library: parse and check .peft sources, compile them to the IR against a model's
 * config.json, plan, and run them.
 */
export { parse, type ParseResult } from "./parser/index.js";
export type * from "./parser/ast.js";
export { check, LANGUAGE_VERSION, TEMPLATE_NAMES, type CheckOptions, type CheckResult } from "./check/index.js";
export type * from "./check/spec.js";
export { checkSource, type FrontendResult } from "./frontend.js";
export { DIAGNOSTICS, diag, formatDiagnostic, hasErrors, sortDiagnostics, type Diagnostic, type DiagnosticCode, type Severity } from "./diagnostics/index.js";
export * as ir from "./ir/index.js";
export type { Graph, Param, Op, ValueDecl } from "./ir/index.js";
export { loadProfile, profileFromConfig, resolveSelector, builtinNames, type ModelProfile, type ModuleInfo } from "./models/index.js";
export { buildBaseGraph } from "./models/graph/index.js";
export { compileSpec, type CompileOptions, type CompileResult } from "./passes/compile.js";
export { PIPELINE, passNames, runPipeline, type Pass } from "./passes/pipeline.js";
export { planNumbers, formatPlan, peftLine, type PlanNumbers } from "./plan/report.js";
export { prepareSession, type Session } from "./runtime/train/session.js";
export { runTraining, type Reporter, type RunResult } from "./runtime/train/loop.js";
export { saveAdapter, loadAdapter, mergeAdapter } from "./runtime/adapter/index.js";
