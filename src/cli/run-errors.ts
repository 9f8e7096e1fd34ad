/**
 * A run's user errors from loading the model, the data or the adapter to start from, as coded
 * diagnostics at the statement that named the file: `run.peft:2:1: error P601: data file … not
 * found`, not a bare message. The loaders report what went wrong and in which file; this maps the
 * file back to the spec.
 */
import { dirname, relative, resolve, sep } from "node:path";
import { DiagnosticsError, type Diagnostic, type DiagnosticCode } from "../diagnostics/index.js";
import type { Span } from "../parser/ast.js";
import { checkSource } from "../frontend.js";
import { DataError } from "../runtime/data/errors.js";
import { UserError } from "../runtime/io/errors.js";
import { DIAGNOSTICS } from "../diagnostics/table.js";

function inside(p: string, folder: string): boolean {
  const r = relative(folder, p);
  return r === "" || (!r.startsWith("..") && !r.startsWith(sep));
}

function coded(code: DiagnosticCode, file: string, span: Span | undefined, message: string): Diagnostic {
  const d: Diagnostic = { code, severity: DIAGNOSTICS[code].severity, message, file };
  if (span) d.span = span;
  return d;
}

/** `e` as a DiagnosticsError at the spec statement it concerns, or `e` itself when it is not a user error of loading. */
export function locateRunError(e: unknown, source: Uint8Array, file: string): unknown {
  if (!(e instanceof UserError)) return e;
  const spec = checkSource(source, file).spec;
  const base = dirname(resolve(file));
  const at = (p: string) => resolve(base, p);
  const train = spec.data.train;
  const evalData = spec.data.eval;
  const dataOf = (f: string | undefined) => (f !== undefined && evalData?.file !== undefined && at(evalData.file) === at(f) ? evalData : train);
  if (e instanceof DataError) {
    const d = dataOf(e.file);
    return new DiagnosticsError([coded(e.code, file, d?.fileSpan ?? d?.span, e.message)]);
  }
  const model = spec.model && spec.model.builtin === undefined ? at(spec.model.source) : undefined;
  const message = e.message;
  if ((model && e.file !== undefined && inside(at(e.file), model)) || message.startsWith("model ") || /tokenizer/.test(message)) {
    return new DiagnosticsError([coded("P410", file, spec.model?.span, `cannot load the model: ${message}`)]);
  }
  if (spec.init && e.file !== undefined && inside(at(e.file), at(spec.init.from))) {
    return new DiagnosticsError([coded("P411", file, spec.init.span, `cannot load the adapter to start from: ${message}`)]);
  }
  if (e.file === undefined || (train?.file !== undefined && at(e.file) === at(train.file)) || (evalData?.file !== undefined && at(e.file) === at(evalData.file))) {
    const d = /eval split/.test(message) ? evalData ?? train : dataOf(e.file);
    if (d) return new DiagnosticsError([coded("P607", file, d.span, `the data cannot train: ${message}`)]);
  }
  return e;
}
