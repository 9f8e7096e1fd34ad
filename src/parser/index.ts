/**
 * parse(): bytes or text of a .peft file → AST plus syntax diagnostics. Never throws on input.
 */
import type { ILexingError, IRecognitionException, IToken } from "chevrotain";
import type { PeftFile, Span } from "./ast.js";
import { AstBuilder, tokenSpan } from "./build-ast.js";
import { parseTokens } from "./grammar.js";
import { MAX_NESTING, MAX_TOKENS, tooDeepAt } from "./limits.js";
import { PeftLexer } from "./tokens.js";
import { type Diagnostic, diag } from "../diagnostics/index.js";

export * from "./ast.js";

export interface ParseResult {
  ast: PeftFile;
  diagnostics: Diagnostic[];
}

/** Maps a 0-based offset to a 1-based line/column span of one character. */
export function spanAt(text: string, offset: number, length = 1): Span {
  const starts = lineStarts(text);
  let lo = 0;
  let hi = starts.length - 1;
  // The last line starting at or before `offset` (a newline at `offset` belongs to the line it ends).
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  const line = lo + 1;
  const column = offset - starts[lo]! + 1;
  return { line, column, endLine: line, endColumn: column + length, start: offset, end: offset + length };
}

// One file's line starts, kept for the file being parsed: a damaged file can carry thousands of
// diagnostics, and scanning from the top for each one made that quadratic.
let cachedText: string | undefined;
let cachedStarts: number[] = [0];
function lineStarts(text: string): number[] {
  if (text !== cachedText) {
    cachedStarts = [0];
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) cachedStarts.push(i + 1);
    cachedText = text;
  }
  return cachedStarts;
}

/** Decodes UTF-8 strictly; on failure reports the first bad byte and decodes leniently. */
function decode(bytes: Uint8Array, file: string, diagnostics: Diagnostic[]): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const text = new TextDecoder("utf-8").decode(bytes);
    const prefix = new TextDecoder("utf-8").decode(bytes.subarray(0, bad));
    diagnostics.push(diag("P102", file, spanAt(text, prefix.length), [bad]));
    return text;
  }
}

function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (n < 0 || i + n >= b.length + (n === 0 ? 1 : 0) && n > 0) return i;
    for (let k = 1; k <= n; k++) if (((b[i + k] ?? 0) & 0xc0) !== 0x80) return i;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(i, i + n + 1));
    } catch {
      return i;
    }
    i += n + 1;
  }
  return b.length;
}

function lexError(e: ILexingError, text: string, file: string): Diagnostic {
  const span = spanAt(text, e.offset, Math.max(1, e.length));
  const ch = text[e.offset] ?? "";
  if (ch === '"') return diag("P103", file, span, [JSON.stringify(text.slice(e.offset, e.offset + 20).split("\n")[0] ?? "")]);
  const shown = ch === "\n" ? "newline" : JSON.stringify(ch);
  return diag("P101", file, span, [shown]);
}

function describe(t: IToken): string {
  return t.tokenType.name === "EOF" ? "end of file" : `'${t.image}'`;
}

function parseError(e: IRecognitionException, text: string, file: string): Diagnostic {
  const t = e.token;
  const prev = (e as { previousToken?: IToken }).previousToken;
  let span = Number.isFinite(t.startOffset) && t.tokenType.name !== "EOF" ? tokenSpan(t) : spanAt(text, Math.max(0, text.length - 1));
  // A missing ';' is best shown right after the token it should follow, not on the next line.
  if (prev && Number.isFinite(prev.endOffset) && (prev.endLine ?? 0) < span.line) {
    span = spanAt(text, (prev.endOffset ?? 0) + 1);
  }
  const expected = expectedFrom(e.message);
  return diag("P201", file, span, [expected, describe(t)]);
}

/** Turns chevrotain's "Expecting ... but found ..." into a short list of what was expected. */
function expectedFrom(message: string): string {
  const m = /Expecting (?:token of type )?(?:--> )?(.+?)(?: <--)? but found/s.exec(message);
  if (!m) {
    const alts = [...message.matchAll(/\[([^\]]+)\]/g)].map((x) => x[1]!.split(",")[0]!.trim());
    const uniq = [...new Set(alts)].slice(0, 6);
    return uniq.length ? `one of ${uniq.join(", ")}` : "something else";
  }
  return m[1]!.trim().replace(/\s+/g, " ");
}

export function parse(input: string | Uint8Array, file: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const text = typeof input === "string" ? input : decode(input, file, diagnostics);
  const lexed = PeftLexer.tokenize(text);
  for (const e of lexed.errors) diagnostics.push(lexError(e, text, file));
  let tokens = lexed.tokens;
  if (tokens.length > MAX_TOKENS) {
    diagnostics.push(diag("P208", file, tokenSpan(tokens[MAX_TOKENS]!), [tokens.length, MAX_TOKENS]));
    tokens = tokens.slice(0, MAX_TOKENS);
  }
  const deep = tooDeepAt(tokens);
  if (deep >= 0) diagnostics.push(diag("P207", file, tokenSpan(tokens[deep]!), [MAX_NESTING]));
  const { cst, errors } = parseTokens(deep >= 0 ? tokens.slice(0, deep) : tokens);
  for (const e of errors) diagnostics.push(parseError(e, text, file));
  const builder = new AstBuilder(file);
  const statements = builder.statements(cst);
  // A statement the parser gave up on is not also an unknown statement.
  const syntaxAt = new Set(diagnostics.filter((d) => d.code === "P201").map((d) => d.span?.start));
  diagnostics.push(...builder.diagnostics.filter((d) => d.code !== "P203" || !syntaxAt.has(d.span?.start)));
  const whole: Span = { ...spanAt(text, 0, 0), endLine: 1, endColumn: 1, end: text.length };
  return { ast: { file, statements, span: whole }, diagnostics };
}
