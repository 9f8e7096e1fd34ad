/** `pefc merge` and `pefc export adapter`: adapters folded into weights, or copied out clean. */
import { copyFile, mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { builtinConfig } from "../models/builtin.js";
import { mergeAdapter, withShapes, writeHfCheckpoint } from "../runtime/adapter/index.js";
import { replaceDirAtomic, writeFileAtomic } from "../runtime/io/atomic.js";
import { UserError } from "../runtime/io/errors.js";
import { checkOutputs, writeOwnerMarker, type OutputKind } from "../runtime/io/outputs.js";
import { diag } from "../diagnostics/index.js";
import { loadForGeneration } from "../runtime/generate/load.js";
import type { Command } from "./commands.js";
import { userErrors } from "./errors.js";
import type { Output } from "./io.js";

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "generation_config.json"];

export const merge: Command = {
  summary: "fold an adapter into the base weights, as a Hugging Face checkpoint",
  usage: `pefc merge --model DIR|builtin:NAME --adapter DIR --out DIR

Writes config.json and model.safetensors with LoRA (W + s·B·A), AdaLoRA and IA3 folded in and
BitFit biases replaced, plus the model folder's tokenizer files. Prefix, prompt and bottleneck
adapters and gated LoRA cannot be folded into weights (P504): export the adapter instead.`,
  options: {
    model: { type: "string", description: "the base model: a checkpoint folder or builtin:NAME" },
    adapter: { type: "string", description: "the adapter folder" },
    out: { type: "string", description: "the folder to write the merged model to (new, empty, or written by pefc)" },
    overwrite: { type: "boolean", description: "replace a file or a folder pefc did not write at --out" },
  },
  async run(args, v, io) {
    if (args.length || typeof v.model !== "string" || typeof v.adapter !== "string" || typeof v.out !== "string") {
      io.err("pefc merge: --model, --adapter and --out are required; see pefc merge --help");
      return 1;
    }
    return userErrors(io, "merge", async () => {
      const inputs = [{ path: v.adapter as string, what: "the adapter" }, ...((v.model as string).startsWith("builtin:") ? [] : [{ path: v.model as string, what: "the model" }])];
      guardOut(v.out as string, "merged", Boolean(v.overwrite), inputs);
      const m = await loadForGeneration(v.model as string, v.adapter as string);
      const base = new Map<string, Float32Array>();
      for (const p of m.graph.params) if (p.origin === "base") base.set(p.name, m.params.get(p.name)!);
      const merged = mergeAdapter({ base, profile: m.profile, spec: m.spec, graph: m.graph, values: m.params });
      const out = resolve(v.out as string);
      const config = m.spec.model?.builtin !== undefined ? builtinConfig(m.spec.model.builtin)! : m.profile.config;
      const source = m.spec.model?.builtin === undefined ? m.profile.source : undefined;
      await writeHfCheckpoint(out, withShapes(merged, m.profile), config, {
        also: async (tmp) => {
          if (!source) return;
          const have = new Set(await readdir(source));
          for (const f of TOKENIZER_FILES) if (have.has(f)) await copyFile(join(source, f), join(tmp, f));
        },
      });
      io.out(`merged ${v.adapter} into ${v.model}: ${out}`);
      return 0;
    });
  },
};

export const exportCommand: Command = {
  summary: "copy a checkpoint's adapter out as a clean PEFT folder",
  usage: `pefc export adapter CHECKPOINT_DIR --out DIR

Writes adapter_config.json and adapter_model.safetensors of a checkpoint (without pefc's trainer
state) to DIR, ready for Hugging Face PEFT's PeftModel.from_pretrained.`,
  options: {
    out: { type: "string", description: "the folder to write (new, empty, or written by pefc)" },
    overwrite: { type: "boolean", description: "replace a file or a folder pefc did not write at --out" },
  },
  async run(args, v, io) {
    if (args[0] !== "adapter" || args.length !== 2 || typeof v.out !== "string") {
      io.err("pefc export: usage: pefc export adapter CHECKPOINT_DIR --out DIR");
      return 1;
    }
    return userErrors(io, "export", async () => {
      const from = resolve(args[1]!);
      const have = new Set(await readdir(from).catch(() => [] as string[]));
      for (const f of ["adapter_config.json", "adapter_model.safetensors"]) {
        if (!have.has(f)) throw new UserError(`${from}: no ${f}; give a checkpoint or adapter folder written by pefc run`, { file: from });
      }
      guardOut(v.out as string, "export", Boolean(v.overwrite), [{ path: from, what: "the checkpoint" }]);
      const out = resolve(v.out as string);
      await mkdir(resolve(out, ".."), { recursive: true });
      await replaceDirAtomic(out, async (tmp) => {
        for (const f of ["adapter_config.json", "adapter_model.safetensors"]) await copyFile(join(from, f), join(tmp, f));
        await writeFileAtomic(join(tmp, "README.md"), `PEFT adapter exported by pefc from ${from}.\n`);
        await writeOwnerMarker(tmp, "export");
      });
      io.out(`exported ${from} to ${out}`);
      return 0;
    });
  },
};

/** Refuses --out where writing would destroy a file or folder that is not pefc's (io/outputs.ts). */
function guardOut(out: string, kind: OutputKind, overwrite: boolean, inputs: { path: string; what: string }[]): void {
  const problems = checkOutputs([{ path: out, kind, label: "--out" }], { overwrite, inputs, replaceOwn: true });
  const p = problems[0];
  if (!p) return;
  const d = diag(p.code, "--out", undefined, p.args);
  throw new UserError(`error ${d.code}: ${d.message}`, { file: out });
}
