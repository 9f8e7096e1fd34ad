/**
 * How commands that load models and data end on a user's mistake: the diagnostics or the message,
 * exit 1, never a stack trace. Anything else is an internal error and propagates (exit 2).
 */
import { DiagnosticsError, formatDiagnostic, type Diagnostic } from "../diagnostics/index.js";
import { isUserError } from "../runtime/io/errors.js";
import type { Output } from "./io.js";

export async function userErrors(io: Output, command: string, work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof DiagnosticsError) {
      for (const d of e.diagnostics) io.err(formatDiagnostic(fromFlag(d, command)));
      return 1;
    }
    if (isUserError(e)) {
      io.err(`pefc ${command}: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}

/**
 * generate, chat and merge check a spec they write themselves from --model (`<generate>`); a
 * problem in it is the flag's, not a place in a file the user never wrote.
 */
function fromFlag(d: Diagnostic, command: string): Diagnostic {
  if (!/^<[a-z]+>$/.test(d.file)) return d;
  const { span: _span, ...rest } = d;
  return { ...rest, file: `pefc ${command} --model` };
}
