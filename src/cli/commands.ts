/**
 * The pefc subcommands that work on .peft files without a device: check, explain, compile.
 * Each returns its exit code: 0 success, 1 user error (diagnostics printed), 2 internal error.
 */
import { parseArgs } from "node:util";
import { DIAGNOSTICS, type DiagnosticCode, didYouMean, formatDiagnostic } from "../diagnostics/index.js";
import { checkSource } from "../frontend.js";
import { readInput, type Output } from "./io.js";
import { compileFile, encoderFor } from "./compile-spec.js";
import { defaultSeq, emitProgram } from "../codegen/wgsl/program/index.js";
import { compileSpec } from "../passes/compile.js";
import { passNames } from "../passes/pipeline.js";
import { graphToJson, printGraph } from "../ir/index.js";

export interface Command {
  summary: string;
  usage: string;
  options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean; description: string }>;
  run(positionals: string[], values: Record<string, unknown>, io: Output): Promise<number> | number;
}

export const check: Command = {
  summary: "check .peft files and report every problem",
  usage: "pefc check FILE... [--json]\n\nChecks each file (- reads standard input). Exit 0 when clean, 1 when any file has errors.",
  options: { json: { type: "boolean", description: "print diagnostics as JSON lines" } },
  run(files, values, io) {
    if (files.length === 0) {
      io.err("pefc check: no file given; usage: pefc check FILE...");
      return 1;
    }
    let failed = false;
    for (const f of files) {
      const input = readInput(f);
      const diags = input.error ? [input.error] : checkSource(input.bytes!, input.name).diagnostics;
      for (const d of diags) {
        if (values.json) io.out(JSON.stringify(d));
        else io.err(formatDiagnostic(d));
      }
      if (diags.some((d) => d.severity === "error")) failed = true;
    }
    return failed ? 1 : 0;
  },
};

export const explain: Command = {
  summary: "explain a diagnostic code",
  usage: "pefc explain CODE\n\nPrints what a diagnostic such as P401 means and how to fix it.",
  options: {},
  run(args, _values, io) {
    const code = (args[0] ?? "").toUpperCase();
    if (!code) {
      io.err("pefc explain: give a code, e.g. pefc explain P301");
      return 1;
    }
    const info = (DIAGNOSTICS as Record<string, (typeof DIAGNOSTICS)[DiagnosticCode]>)[code];
    if (!info) {
      const guess = didYouMean(code, Object.keys(DIAGNOSTICS));
      io.err(`pefc explain: unknown code ${args[0]}${guess ? `; did you mean ${guess}?` : ""}`);
      return 1;
    }
    io.out(`${code} (${info.severity}): ${info.message.replace(/\{\d+\}/g, "…")}\n\n${info.explain}`);
    return 0;
  },
};

const EMITS = ["ast", "spec", "ir", "json", "wgsl", "plan"];

export const compile: Command = {
  summary: "print a stage of the compiler as JSON or text",
  usage: `pefc compile FILE --emit ast|spec|ir|json|wgsl|plan [--until PASS] [--seq N]

ast: the syntax tree with source spans; spec: the checked spec with every default written out;
ir: the graph's text form; json: the graph as JSON (schemas/ir.schema.json); wgsl: every kernel
of the training step and evaluation, each under a header naming its ops; plan: buffers with
sizes, tensor offsets and the dispatch list with workgroup counts, and peak device memory
(both built for the spec's batch and --seq tokens, on a baseline WebGPU device).
--until stops the pipeline after a pass: ${passNames().join(", ")}.`,
  options: {
    emit: { type: "string", description: "what to print: ast, spec, ir, json, wgsl or plan" },
    seq: { type: "string", description: "sequence length the wgsl and plan programs are built for (default: the data's length budget)" },
    until: { type: "string", description: "stop after this pass (ir and json)" },
  },
  async run(files, values, io) {
    const emit = (values.emit as string | undefined) ?? "spec";
    if (!EMITS.includes(emit)) {
      io.err(`pefc compile: --emit takes ${EMITS.join(", ")}, not '${emit}'`);
      return 1;
    }
    const until = values.until as string | undefined;
    if (until !== undefined && !passNames().includes(until)) {
      const guess = didYouMean(until, passNames());
      io.err(`pefc compile: no pass named '${until}'${guess ? `; did you mean '${guess}'?` : ""}; passes: ${passNames().join(", ")}`);
      return 1;
    }
    if (emit === "wgsl" || emit === "plan") {
      if (files.length !== 1) {
        io.err("pefc compile: give exactly one FILE");
        return 1;
      }
      const c = await compileFile(files[0]!, io);
      if (!c) return 1;
      const seq = values.seq === undefined ? defaultSeq(c.spec) : Number(values.seq);
      if (!Number.isInteger(seq) || seq < 1) {
        io.err(`pefc compile: --seq takes a positive whole number, not '${String(values.seq)}'`);
        return 1;
      }
      const encode = await encoderFor(c.spec);
      const ev = compileSpec(c.spec, { until: "require-trainable", ...(encode ? { encode } : {}) });
      io.out(emitProgram(c.spec, c.result.graph!, ev.graph!, emit, seq));
      return 0;
    }
    if (emit === "ir" || emit === "json") {
      if (files.length !== 1) {
        io.err("pefc compile: give exactly one FILE");
        return 1;
      }
      const c = await compileFile(files[0]!, io, until);
      if (!c) return 1;
      io.out(emit === "ir" ? printGraph(c.result.graph!) : JSON.stringify(graphToJson(c.result.graph!), null, 2));
      return 0;
    }
    if (files.length !== 1) {
      io.err("pefc compile: give exactly one FILE");
      return 1;
    }
    const input = readInput(files[0]!);
    if (input.error) {
      io.err(formatDiagnostic(input.error));
      return 1;
    }
    const r = checkSource(input.bytes!, input.name);
    for (const d of r.diagnostics) io.err(formatDiagnostic(d));
    if (!r.ok) return 1;
    io.out(JSON.stringify(emit === "ast" ? r.ast : r.spec, null, 2));
    return 0;
  },
};

export { parseArgs };
