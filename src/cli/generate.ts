/** `pefc generate`: text from a model, with or without an adapter. */
import { templateByName } from "../models/templates.js";
import { parseTemplate, renderExchange } from "../runtime/data/index.js";
import { generate as run } from "../runtime/generate/generate.js";
import { loadForGeneration } from "../runtime/generate/load.js";
import { chooseDecodeDevice, isGenerateDevice, openDecoder } from "../runtime/generate/open-decoder.js";
import type { Command } from "./commands.js";
import { userErrors } from "./errors.js";

function number(v: unknown, name: string, dflt: number, check: (n: number) => boolean, what: string): number | string {
  if (v === undefined) return dflt;
  const n = Number(v);
  return Number.isFinite(n) && check(n) ? n : `--${name} must be ${what}, not '${String(v)}'`;
}

export const generateCommand: Command = {
  summary: "generate text from a model and an optional adapter",
  usage: `pefc generate --model DIR|builtin:NAME [--adapter DIR] --prompt TEXT [--template NAME|TEXT]
              [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S] [--device gpu|reference]

Continues the prompt token by token and prints the prompt with its continuation. With --template
the prompt is a question put through a chat template first — "model" for the model's own
(ChatGLM2: "[Round 1]\n\n问：...\n\n答："), or chatglm2, llama2, alpaca, plain, or text with
{prompt} — and only the answer is printed. --temperature 0 (the default) picks the most likely token;
otherwise tokens are sampled from the softmax at that temperature, cut to top-p. By default it
decodes on the WebGPU device with a KV cache sized for the prompt and the new tokens (at most the
model's positions), or, when there is no WebGPU adapter, on the CPU reference, saying so in one
line on stderr; --device gpu insists on the WebGPU device, --device reference recomputes the whole
sequence on the CPU.`,
  options: {
    model: { type: "string", description: "a Hugging Face checkpoint folder or builtin:NAME" },
    adapter: { type: "string", description: "an adapter folder (PEFT layout, or pefc's)" },
    prompt: { type: "string", description: "the text to continue (a question, with --template)" },
    template: { type: "string", description: "put the prompt through a chat template: model, chatglm2, llama2, alpaca, plain, or text with {prompt}" },
    "max-new-tokens": { type: "string", description: "tokens to generate at most (default 64)" },
    temperature: { type: "string", description: "sampling temperature; 0 = greedy (default 0)" },
    "top-p": { type: "string", description: "nucleus sampling mass (default 1)" },
    seed: { type: "string", description: "sampling seed (default 0)" },
    device: { type: "string", description: "where to compute: gpu (default) or reference; no --device falls back to reference without a WebGPU adapter" },
  },
  async run(args, v, io) {
    if (args.length > 0) {
      io.err(`pefc generate: unexpected argument '${args[0]}'; the prompt goes in --prompt`);
      return 1;
    }
    if (typeof v.model !== "string" || typeof v.prompt !== "string") {
      io.err("pefc generate: --model and --prompt are required; see pefc generate --help");
      return 1;
    }
    const model = v.model;
    const prompt = v.prompt;
    const device = v.device as string | undefined;
    if (device !== undefined && !isGenerateDevice(device)) {
      io.err(`pefc generate: --device takes gpu or reference, not '${device}'`);
      return 1;
    }
    const opts = {
      maxNewTokens: number(v["max-new-tokens"], "max-new-tokens", 64, (n) => Number.isInteger(n) && n >= 1, "a whole number >= 1"),
      temperature: number(v.temperature, "temperature", 0, (n) => n >= 0, "a number >= 0"),
      topP: number(v["top-p"], "top-p", 1, (n) => n > 0 && n <= 1, "in (0, 1]"),
      seed: number(v.seed, "seed", 0, (n) => Number.isInteger(n) && n >= 0, "a whole number >= 0"),
    };
    for (const x of Object.values(opts)) {
      if (typeof x === "string") {
        io.err(`pefc generate: ${x}`);
        return 1;
      }
    }
    return userErrors(io, "generate", async () => {
      const on = await chooseDecodeDevice(device, (line) => io.err(line));
      try {
        const m = await loadForGeneration(model, v.adapter as string | undefined, process.cwd(), { streamBase: on.device === "gpu" });
        const o = opts as { maxNewTokens: number; temperature: number; topP: number; seed: number };
        const t = v.template;
        const templateText = typeof t !== "string" ? undefined : t === "model" ? m.profile.chatTemplate : (templateByName(t) ?? t);
        if (templateText !== undefined && !templateText.includes("{prompt}")) {
          io.err(`pefc generate: --template '${String(t)}' is neither a template name nor text with {prompt}`);
          return 1;
        }
        const text = templateText === undefined ? prompt : renderExchange(parseTemplate(templateText), { prompt, response: "" }).prompt;
        const decoder = await openDecoder(m, on, m.tokenizer.encode(text).length + o.maxNewTokens);
        try {
          const r = await run(decoder, m.tokenizer, text, o);
          io.out(templateText === undefined ? prompt + r.text : r.text.trim());
        } finally {
          decoder.dispose();
        }
        return 0;
      } finally {
        if (on.device === "gpu") on.gpu.destroy();
      }
    });
  },
};
