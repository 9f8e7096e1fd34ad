// Tokenizers of Hugging Face model folders (tokenizer.json + tokenizer_config.json), run by the
// maintained @huggingface/tokenizers library rather than a BPE of our own: byte-level BPE (GPT-2,
// Qwen2), SentencePiece-style BPE with byte fallback (Llama, stories260K) and the rest behave as
// in Python `tokenizers`. Special-token ids come from tokenizer_config.json, else config.json.
// A folder with tokenizer.model and no tokenizer.json (ChatGLM2-6B, many Llama folders) goes to
// SentencePiece itself (sentencepiece.ts).

import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { UserError } from "../io/errors.js";
import { loadSentencePiece, sentencePieceConvention } from "./sentencepiece.js";
import type { EncodeOptions, Tokenizer } from "./types.js";

type Json = Record<string, unknown>;

export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const tokenizerPath = join(dir, "tokenizer.json");
  const spPath = join(dir, "tokenizer.model");
  const configPath = join(dir, "tokenizer_config.json");
  const config = (await readJson(configPath, false)) ?? {};
  const modelConfig = (await readJson(join(dir, "config.json"), false)) ?? {};
  if (!(await exists(tokenizerPath)) && (await exists(spPath))) {
    return loadSentencePiece(spPath, sentencePieceConvention(config, modelConfig, configPath), config);
  }
  if (!(await exists(tokenizerPath))) {
    throw new UserError(`${tokenizerPath}: cannot read: no such file (nor tokenizer.model); copy the model's tokenizer files into ${dir}`, { file: tokenizerPath });
  }
  const tokenizerJson = await readJson(tokenizerPath, true);
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(tokenizerJson, config);
  } catch (e) {
    throw new UserError(`${tokenizerPath}: unsupported tokenizer: ${(e as Error).message}`, { file: tokenizerPath });
  }
  return new HfTokenizerAdapter(tok, config, modelConfig);
}

class HfTokenizerAdapter implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly padId?: number;

  constructor(
    private readonly tok: HfTokenizer,
    config: Json,
    modelConfig: Json,
  ) {
    let max = -1;
    for (const id of tok.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    const bos = this.specialId(config.bos_token) ?? intOrUndefined(modelConfig.bos_token_id);
    const eos = this.specialId(config.eos_token) ?? intOrUndefined(modelConfig.eos_token_id);
    const pad = this.specialId(config.pad_token) ?? intOrUndefined(modelConfig.pad_token_id);
    if (bos !== undefined) this.bosId = bos;
    if (eos !== undefined) this.eosId = eos;
    if (pad !== undefined) this.padId = pad;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecial !== false }).ids;
  }

  decode(ids: number[]): string {
    const known = ids.filter((id) => Number.isInteger(id) && id >= 0 && id < this.vocabSize);
    if (known.length === 0) return "";
    return this.tok.decode(known, { skip_special_tokens: true });
  }

  private specialId(token: unknown): number | undefined {
    const content =
      typeof token === "string"
        ? token
        : typeof token === "object" && token !== null && typeof (token as Json).content === "string"
          ? ((token as Json).content as string)
          : undefined;
    return content === undefined ? undefined : this.tok.token_to_id(content);
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

function intOrUndefined(v: unknown): number | undefined {
  return typeof v === "number" && Number.isInteger(v) ? v : undefined;
}

async function readJson(path: string, required: true): Promise<Json>;
async function readJson(path: string, required: false): Promise<Json | undefined>;
async function readJson(path: string, required: boolean): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message;
    throw new UserError(`${path}: cannot read: ${why}`, { file: path });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`, { file: path });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UserError(`${path}: expected a JSON object`, { file: path });
  }
  return parsed as Json;
}
