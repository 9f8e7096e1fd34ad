/**
 * The spec fuzzer's worker process: checks damaged specs in-process (the library's parse + check,
 * what `pefc check` runs) and reports each case to the parent, which times it out and restarts
 * this process should a case hang or bring it down.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatDiagnostic } from "../src/diagnostics/index.js";
import { checkSource } from "../src/frontend.js";
import { specCase } from "./specs-cases.js";
import { specSources } from "./lib/spec-sources.js";

export type WorkerMessage =
  | { type: "start"; i: number }
  | { type: "done"; i: number; clean: boolean; ms: number; mutation: string }
  | { type: "fail"; i: number; why: string; mutation: string; saved: string }
  | { type: "heap"; i: number; bytes: number }
  | { type: "end" };

const [seedArg, fromArg, toArg] = process.argv.slice(2);
const seed = Number(seedArg);
const from = Number(fromArg);
const to = Number(toArg);
const sources = specSources();
const send = (m: WorkerMessage) => process.send!(m);
const gc = (globalThis as { gc?: () => void }).gc;

let clean = false;

function problems(bytes: string | Uint8Array, file: string): string | undefined {
  let res;
  try {
    res = checkSource(bytes, file);
  } catch (e) {
    return `checkSource threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  }
  clean = res.ok;
  for (const d of res.diagnostics) {
    const line = formatDiagnostic(d);
    if (!/^P\d{3}$/.test(d.code)) return `diagnostic without a code: ${line}`;
    if (/\n\s+at /.test(d.message)) return `stack trace in a diagnostic: ${line}`;
    if (d.severity === "error" && !(d.span && d.span.line >= 1 && d.span.column >= 1)) return `error without line:col: ${line}`;
  }
  if (!res.ok && !res.diagnostics.some((d) => d.severity === "error")) return "not ok without an error";
  return undefined;
}

for (let i = from; i < to; i++) {
  send({ type: "start", i });
  const c = specCase(sources, seed, i);
  const t0 = performance.now();
  const why = problems(c.bytes, c.source.file);
  const ms = performance.now() - t0;
  if (why) {
    const dir = join(tmpdir(), "pefc-faults");
    mkdirSync(dir, { recursive: true });
    const saved = join(dir, `spec-${seed}-${i}.peft`);
    writeFileSync(saved, c.bytes);
    send({ type: "fail", i, why, mutation: c.mutation, saved });
  } else send({ type: "done", i, clean, ms, mutation: c.mutation });
  if (gc && (i - from + 1) % 1000 === 0) {
    gc();
    send({ type: "heap", i, bytes: process.memoryUsage().heapUsed });
  }
}
send({ type: "end" });
process.disconnect();
