/** `pefc plan FILE`: what will train and what it costs, from config.json alone. */
import type { Command } from "./commands.js";
import { compileFile } from "./compile-spec.js";
import { bytes, formatPlan, planNumbers } from "../plan/report.js";
import { countRecords } from "../plan/records.js";
import { missingModelFiles } from "../runtime/io/checkpoint.js";
import { engineMemory, formatEngineMemory, type EngineTopology } from "../plan/engine.js";
import { formatDiagnostic } from "../diagnostics/index.js";
import { modelWarnings } from "./model-warnings.js";
import { topologyFlags } from "./topology-flags.js";

/** The --engine/--gpus/--nodes/--precision topology, undefined without --engine, or the problem. */
function topology(values: Record<string, unknown>): EngineTopology | undefined | string {
  if (values.engine === undefined) {
    return values.gpus !== undefined || values.nodes !== undefined ? "pefc plan: --gpus and --nodes go with --engine deepspeed|fsdp|ddp" : undefined;
  }
  return topologyFlags(values, "plan", "deepspeed");
}

export const plan: Command = {
  summary: "show what a spec trains and costs, without weights",
  usage:
    "pefc plan FILE [--json] [--engine deepspeed|fsdp|ddp --gpus N [--nodes M] [--precision no|bf16|fp16]]\n\nResolves every selector against the model's config.json and prints, per method, the modules it adapts and\nits parameters; PEFT's trainable-parameter line; steps per epoch and total steps (counting the train records\nwhen the data file is there); and an estimate of device memory. Reads no weights. With --engine, also the\nmemory per GPU of the run exported (`pefc export-run`) to that engine on N GPUs x M nodes: ZeRO-3 and FSDP\nshard parameters, gradients and optimizer state, DDP replicates them; activations are one micro-batch.",
  options: {
    json: { type: "boolean", description: "print the numbers as JSON" },
    engine: { type: "string", description: "also estimate per-GPU memory on deepspeed (ZeRO-3), fsdp or ddp" },
    gpus: { type: "string", description: "GPUs per node for --engine (default 1)" },
    nodes: { type: "string", description: "nodes for --engine (default 1)" },
    precision: { type: "string", description: "weights under --engine: no (f32), bf16 or fp16 (default no)" },
  },
  async run(files, values, io) {
    if (files.length !== 1) {
      io.err("pefc plan: give exactly one FILE");
      return 1;
    }
    const topo = topology(values);
    if (typeof topo === "string") {
      io.err(topo);
      return 1;
    }
    // Counted on the unfused graph: FLOPs are the same, and the unpruned comparison re-derives backward.
    const compiled = await compileFile(files[0]!, io, undefined, false);
    if (!compiled) return 1;
    const { spec, result } = compiled;
    for (const w of modelWarnings(spec, result.profile!, result.ctx!.targets)) io.err(formatDiagnostic(w));
    const records = await countRecords(spec);
    if (records.warning) io.err(records.warning);
    // Not in --json output, whose readers want the numbers alone.
    if (spec.model?.builtin === undefined && !values.json) {
      for (const m of await missingModelFiles(result.profile!.source)) io.err(`pefc plan: note: ${m}; pefc run needs it (this plan needs config.json only)`);
    }
    const numbers = planNumbers(spec, result.profile!, result.graph!, result.ctx!, records.count);
    const engine = topo ? engineMemory(spec, result.profile!, result.graph!, numbers.memory, topo) : undefined;
    if (values.json) io.out(JSON.stringify(engine ? { ...numbers, engine } : numbers, null, 2));
    else io.out(formatPlan(spec, result.profile!, result.graph!, result.ctx!, numbers) + (engine ? `\n${formatEngineMemory(engine, bytes)}` : ""));
    return 0;
  },
};
