import type { Span } from "../parser/ast.js";
import { DIAGNOSTICS, type DiagnosticCode, type Severity } from "./table.js";

export { DIAGNOSTICS, type DiagnosticCode, type Severity } from "./table.js";

export interface Diagnostic {
  code: DiagnosticCode;
  severity: Severity;
  message: string;
  file: string;
  span?: Span;
  /** An extra line printed after the message. */
  help?: string;
}

/** Builds a diagnostic from the table, filling `{0}`, `{1}`... with `args`. */
export function diag(
  code: DiagnosticCode,
  file: string,
  span: Span | undefined,
  args: readonly (string | number)[] = [],
  help?: string,
): Diagnostic {
  const info = DIAGNOSTICS[code];
  const message = info.message.replace(/\{(\d+)\}/g, (_, i: string) => String(args[Number(i)] ?? ""));
  const d: Diagnostic = { code, severity: info.severity, message, file };
  if (span) d.span = span;
  if (help !== undefined) d.help = help;
  return d;
}

/** `file:line:col: error P301: message` (+ `  help: ...`). */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.span ? `${d.file}:${d.span.line}:${d.span.column}` : d.file;
  const head = `${where}: ${d.severity} ${d.code}: ${d.message}`;
  return d.help ? `${head}\n  help: ${d.help}` : head;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === "error");
}

/** Orders diagnostics by position, keeping report order for ties. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return ds
    .map((d, i) => ({ d, i }))
    .sort((a, b) => (a.d.span?.start ?? -1) - (b.d.span?.start ?? -1) || a.i - b.i)
    .map((x) => x.d);
}

/** Quotes a user-written name for a message: `name`. */
export function q(s: string): string {
  return `'${s}'`;
}

/** The closest candidate by edit distance, when it is close enough to be a likely typo. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDist) {
      bestDist = dist;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestDist <= limit ? best : undefined;
}

/** Edits between a and b, a swap of two neighbours counting as one (`loar` is one edit from `lora`). */
function editDistance(a: string, b: string): number {
  let before = Array.from({ length: b.length + 1 }, () => 0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      row.push(d);
    }
    before = prev;
    prev = row;
  }
  return prev[b.length]!;
}

/** Thrown by phases that stop on user errors they found (a run's preparation): carries them all. */
export class DiagnosticsError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join("\n"));
  }
}
