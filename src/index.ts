/**
 * pefc as a library: parse and check .peft sources, read the spec, and (as later layers land)
 * compile and run them.
 */
export { parse, type ParseResult } from "./parser/index.js";
export type * from "./parser/ast.js";
export { check, LANGUAGE_VERSION, TEMPLATE_NAMES, type CheckOptions, type CheckResult } from "./check/index.js";
export type * from "./check/spec.js";
export { checkSource, type FrontendResult } from "./frontend.js";
export { DIAGNOSTICS, diag, formatDiagnostic, hasErrors, sortDiagnostics, type Diagnostic, type DiagnosticCode, type Severity } from "./diagnostics/index.js";
