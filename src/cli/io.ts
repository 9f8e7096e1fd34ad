/** Reading inputs for commands: a path, or `-` for standard input. */
import { readFileSync } from "node:fs";
import { type Diagnostic, diag } from "../diagnostics/index.js";

export function readInput(path: string): { bytes?: Uint8Array; name: string; error?: Diagnostic } {
  const name = path === "-" ? "<stdin>" : path;
  try {
    return { bytes: readFileSync(path === "-" ? 0 : path), name };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder" : code === "EACCES" ? "permission denied" : String((e as Error).message);
    return { name, error: diag("P104", name, undefined, [name, why]) };
  }
}

export interface Output {
  out(s: string): void;
  err(s: string): void;
}

export const stdio: Output = {
  out: (s) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith("\n") ? s : `${s}\n`),
};
