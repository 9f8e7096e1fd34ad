/**
 * Shared by commands that need the compiled graph: read and check a .peft file, then compile it
 * against its model's config.json. Prints diagnostics; returns undefined when there were errors.
 */
import { formatDiagnostic, hasErrors, sortDiagnostics } from "../diagnostics/index.js";
import { checkSource } from "../frontend.js";
import { compileSpec, type CompileResult } from "../passes/compile.js";
import type { Spec } from "../check/spec.js";
import { readInput, type Output } from "./io.js";
import { dirname, resolve } from "node:path";
import { ByteTokenizer, loadTokenizer } from "../runtime/tokenizer/index.js";

/**
 * The tokenizer's encode for methods that tokenize text at compile time (prompt_tuning's text
 * initialisation): the byte tokenizer of builtin models, or the folder's tokenizer.json. Undefined
 * when no method needs one or the folder has none (the pass then says what is missing).
 */
export async function encoderFor(spec: Spec): Promise<((text: string) => number[]) | undefined> {
  const needs = spec.methods.some((m) => m.method === "prompt_tuning" && m.options.init.kind === "text");
  if (!needs || !spec.model) return undefined;
  if (spec.model.builtin !== undefined) {
    const t = new ByteTokenizer();
    return (text) => t.encode(text, { addSpecial: false });
  }
  try {
    const t = await loadTokenizer(resolve(dirname(spec.file), spec.model.source));
    return (text) => t.encode(text, { addSpecial: false });
  } catch {
    return undefined;
  }
}

export async function compileFile(path: string, io: Output, until?: string, fuse = true): Promise<{ spec: Spec; result: CompileResult } | undefined> {
  const input = readInput(path);
  if (input.error) {
    io.err(formatDiagnostic(input.error));
    return undefined;
  }
  const checked = checkSource(input.bytes!, input.name);
  for (const d of checked.diagnostics) io.err(formatDiagnostic(d));
  if (!checked.ok) return undefined;
  const encode = await encoderFor(checked.spec);
  const result = compileSpec(checked.spec, { ...(until ? { until } : {}), ...(encode ? { encode } : {}), fuse });
  const diags = sortDiagnostics(result.diagnostics);
  for (const d of diags) io.err(formatDiagnostic(d));
  if (hasErrors(diags) || !result.graph) return undefined;
  return { spec: checked.spec, result };
}
