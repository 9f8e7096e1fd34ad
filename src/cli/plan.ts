/** `pefc plan FILE`: what will train and what it costs, from config.json alone. */
import type { Command } from "./commands.js";
import { compileFile } from "./compile-spec.js";
import { formatPlan, planNumbers } from "../plan/report.js";
import { countRecords } from "../plan/records.js";
import { formatDiagnostic } from "../diagnostics/index.js";
import { modelWarnings } from "./model-warnings.js";

export const plan: Command = {
  summary: "show what a spec trains and costs, without weights",
  usage:
    "pefc plan FILE [--json]\n\nResolves every selector against the model's config.json and prints, per method, the modules it adapts and\nits parameters; PEFT's trainable-parameter line; steps per epoch and total steps (counting the train records\nwhen the data file is there); and an estimate of device memory. Reads no weights.",
  options: { json: { type: "boolean", description: "print the numbers as JSON" } },
  async run(files, values, io) {
    if (files.length !== 1) {
      io.err("pefc plan: give exactly one FILE");
      return 1;
    }
    // Counted on the unfused graph: FLOPs are the same, and the unpruned comparison re-derives backward.
    const compiled = await compileFile(files[0]!, io, undefined, false);
    if (!compiled) return 1;
    const { spec, result } = compiled;
    for (const w of modelWarnings(spec, result.profile!, result.ctx!.targets)) io.err(formatDiagnostic(w));
    const records = await countRecords(spec);
    if (records.warning) io.err(records.warning);
    const numbers = planNumbers(spec, result.profile!, result.graph!, result.ctx!, records.count);
    if (values.json) io.out(JSON.stringify(numbers, null, 2));
    else io.out(formatPlan(spec, result.profile!, result.graph!, result.ctx!, numbers));
    return 0;
  },
};
