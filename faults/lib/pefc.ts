/**
 * The real command line as a user runs it: `node bin/pefc.js` from the build (npm run faults
 * builds first), one process, so a signal sent to it reaches the process that writes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";

export const PEFC_BIN = resolve("bin/pefc.js");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  ms: number;
  timedOut: boolean;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Called with the child once it runs (to kill it at a chosen moment) and with each stdout chunk. */
  onStart?: (child: ChildProcess) => void;
  onOut?: (chunk: string, child: ChildProcess) => void;
}

export function pefc(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [PEFC_BIN, ...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      opts.onOut?.(d.toString(), child);
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    opts.onStart?.(child);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, out, err, ms: performance.now() - started, timedOut });
    });
  });
}

/**
 * A JavaScript stack frame or an internal-error line: what a user must never see. (Dawn's own
 * driver warnings on stderr carry C++ "at Fn (file.cpp:106)" lines; those are not pefc's.)
 */
export function looksLikeTrace(text: string): boolean {
  return /^\s+at .*\.[cm]?[jt]s:\d+:\d+\)?\s*$/m.test(text) || /^\s+at (async )?[\w.<>]+ \(node:/m.test(text) || /internal error/.test(text);
}
