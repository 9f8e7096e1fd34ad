// Data errors are user errors that also carry the diagnostic code of the table (P601-P605) and
// the record's line, so the CLI can print them as coded diagnostics.

import { diag, type DiagnosticCode } from "../../diagnostics/index.js";
import { UserError } from "../io/errors.js";

export type DataErrorCode = Extract<DiagnosticCode, "P601" | "P602" | "P603" | "P605">;

export class DataError extends UserError {
  readonly code: DataErrorCode;
  readonly line: number | undefined;
  readonly help: string | undefined;

  constructor(code: DataErrorCode, file: string, args: (string | number)[], opts: { line?: number; help?: string } = {}) {
    super(diag(code, file, undefined, args).message + (opts.help ? `; ${opts.help}` : ""), { file });
    this.name = "DataError";
    this.code = code;
    this.line = opts.line;
    this.help = opts.help;
  }
}

/** `file:line[:col]: message` in the P603 form; every bad record is reported through this. */
export function recordError(file: string, line: number, message: string, help?: string, column?: number): DataError {
  const where = column === undefined ? `${line}` : `${line}:${column}`;
  return new DataError("P603", file, [file, where, message], help === undefined ? { line } : { line, help });
}

export const SKIP_HINT = "fix the record, or set `on_error = skip` in the data block to skip and count bad records";
