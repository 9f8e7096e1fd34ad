/**
 * `pefc chat`: talk to a model (and adapter) turn by turn, each question put through the chat
 * template with the earlier rounds as history, as the seed's inference script does.
 */
import { createInterface } from "node:readline";
import { templateByName } from "../models/templates.js";
import { parseTemplate, renderExchange } from "../runtime/data/index.js";
import { generate } from "../runtime/generate/generate.js";
import { loadForGeneration } from "../runtime/generate/load.js";
import { chooseDecodeDevice, isGenerateDevice, openDecoder } from "../runtime/generate/open-decoder.js";
import type { Command } from "./commands.js";
import { userErrors } from "./errors.js";

/** Tokens a chat's KV cache holds on the GPU. */
const CHAT_CONTEXT = 4096;

export const chat: Command = {
  summary: "chat with a model and an optional adapter",
  usage: `pefc chat --model DIR|builtin:NAME [--adapter DIR] [--template NAME|TEXT] [--max-new-tokens N]
          [--temperature T] [--top-p P] [--seed S] [--device gpu|reference]

Reads questions line by line from standard input and answers each, keeping earlier rounds as history
in the model's chat template (ChatGLM2: "[Round n]\\n\\n问：...\\n\\n答："). An empty line or
"clear" starts a new conversation; end of input or "exit" quits. On the WebGPU device (the default)
the KV cache holds up to ${CHAT_CONTEXT} tokens (fewer if the model has fewer positions) and keeps the
history's keys and values from turn to turn; a longer conversation must be cleared. Without
--device and without a WebGPU adapter, chat says so in one line on stderr and answers on the CPU
reference; --device gpu insists on the WebGPU device.`,
  options: {
    model: { type: "string", description: "a checkpoint folder or builtin:NAME" },
    adapter: { type: "string", description: "an adapter folder" },
    template: { type: "string", description: "a template name (chatglm2, llama2, alpaca, plain) or text with {prompt}" },
    "max-new-tokens": { type: "string", description: "tokens per answer at most (default 128)" },
    temperature: { type: "string", description: "0 = greedy (default 0)" },
    "top-p": { type: "string", description: "nucleus mass (default 1)" },
    seed: { type: "string", description: "sampling seed (default 0)" },
    device: { type: "string", description: "where to compute: gpu (default) or reference; no --device falls back to reference without a WebGPU adapter" },
  },
  async run(args, v, io) {
    if (args.length || typeof v.model !== "string") {
      io.err("pefc chat: --model is required; see pefc chat --help");
      return 1;
    }
    const model = v.model;
    const maxNewTokens = Number(v["max-new-tokens"] ?? 128);
    const temperature = Number(v.temperature ?? 0);
    const topP = Number(v["top-p"] ?? 1);
    const seed = Number(v.seed ?? 0);
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || !(temperature >= 0) || !(topP > 0 && topP <= 1) || !Number.isInteger(seed)) {
      io.err("pefc chat: --max-new-tokens must be a whole number >= 1, --temperature >= 0, --top-p in (0, 1], --seed a whole number");
      return 1;
    }
    const device = v.device as string | undefined;
    if (device !== undefined && !isGenerateDevice(device)) {
      io.err(`pefc chat: --device takes gpu or reference, not '${device}'`);
      return 1;
    }
    return userErrors(io, "chat", async () => {
      const on = await chooseDecodeDevice(device, (line) => io.err(line));
      try {
        const m = await loadForGeneration(model, v.adapter as string | undefined, process.cwd(), { streamBase: on.device === "gpu" });
        const named = typeof v.template === "string" ? templateByName(v.template) : undefined;
        const text = named ?? (typeof v.template === "string" ? v.template : m.profile.chatTemplate);
        if (!text.includes("{prompt}")) {
          io.err(`pefc chat: --template '${String(v.template)}' is neither a template name nor text with {prompt}`);
          return 1;
        }
        const template = parseTemplate(text);
        const decoder = await openDecoder(m, on, CHAT_CONTEXT);
        try {
          const history: { prompt: string; response: string }[] = [];
          const rl = createInterface({ input: process.stdin, terminal: false });
          if (process.stdin.isTTY) io.err("pefc chat: type a question; empty line = new conversation; exit = quit");
          for await (const line of rl) {
            const q = line.trim();
            if (q === "exit") break;
            if (q === "" || q === "clear") {
              history.length = 0;
              continue;
            }
            const prompt = renderExchange(template, { prompt: q, response: "" }, history).prompt;
            const r = await generate(decoder, m.tokenizer, prompt, { maxNewTokens, temperature, topP, seed });
            io.out(r.text.trim());
            history.push({ prompt: q, response: r.text.trim() });
          }
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
