/** `pefc export-run FILE --to DIR`: the checked run as a transformers + PEFT + Accelerate bundle. */
import { formatDiagnostic } from "../diagnostics/index.js";
import { ENGINES, PRECISIONS } from "../export-run/engine-files.js";
import { exportRun } from "../export-run/bundle.js";
import type { Command } from "./commands.js";
import { userErrors } from "./errors.js";
import { readInput } from "./io.js";
import { topologyFlags } from "./topology-flags.js";

export const exportRunCommand: Command = {
  summary: "write the run as a transformers + PEFT + Accelerate bundle (DeepSpeed ZeRO-3, FSDP, DDP)",
  usage: `pefc export-run FILE --to DIR [--engine deepspeed|fsdp|ddp] [--gpus N] [--nodes M] [--precision bf16|fp16|no] [--from CHECKPOINT] [--overwrite]

Checks FILE and its data, then writes DIR: train.py (transformers + PEFT + Accelerate), data_pipeline.py
(the same examples in the same order as pefc, standard library only), accelerate.yaml for the engine,
ds_config.json (DeepSpeed), launch.sh, requirements.txt, README.md, and start/, the adapter the run
starts from: pefc's initial values, the spec's \`init from\`, or the folder --from names.
Methods PEFT has no config for (bottleneck adapters, MAM, UniPELT, gates, BitFit, several methods
at once) are refused before anything is written. DIR must be new, empty or an
earlier bundle; --overwrite replaces any other folder.`,
  options: {
    to: { type: "string", description: "the folder to write" },
    engine: { type: "string", description: `${ENGINES.join(", ")} (default deepspeed)` },
    gpus: { type: "string", description: "GPUs per node (default 1)" },
    nodes: { type: "string", description: "nodes (default 1)" },
    precision: { type: "string", description: `${PRECISIONS.join(", ")} (default no: f32, as pefc)` },
    from: { type: "string", description: "start from this adapter folder (a pefc checkpoint-N, or any folder `init from` takes)" },
    overwrite: { type: "boolean", description: "replace DIR even when pefc did not write it" },
  },
  async run(files, values, io) {
    if (files.length !== 1) {
      io.err("pefc export-run: give exactly one FILE");
      return 1;
    }
    if (typeof values.to !== "string" || values.to === "") {
      io.err("pefc export-run: give the output folder with --to DIR");
      return 1;
    }
    const topo = topologyFlags(values, "export-run", "deepspeed");
    if (typeof topo === "string") {
      io.err(topo);
      return 1;
    }
    const input = readInput(files[0]!);
    if (input.error) {
      io.err(formatDiagnostic(input.error));
      return 1;
    }
    return userErrors(io, "export-run", async () => {
      const r = await exportRun(input.bytes!, input.name, {
        to: values.to as string, overwrite: Boolean(values.overwrite), ...(typeof values.from === "string" ? { from: values.from } : {}), ...topo,
      });
      io.out(`wrote ${r.dir}: ${r.files.length} files; run it with: bash ${r.dir}/launch.sh`);
      return 0;
    });
  },
};
