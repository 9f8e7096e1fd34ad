// Tokenizers of model folders that ship a SentencePiece `tokenizer.model` and no tokenizer.json
// (ChatGLM2-6B, many Llama 1/2 folders), run by google/sentencepiece itself compiled to WASM
// (@sctg/sentencepiece-js), so pieces, byte fallback and normalisation are SentencePiece's own.
// Two conventions sit on top, chosen by tokenizer_config.json's tokenizer_class (else config.json's
// model_type):
//
// ChatGLMTokenizer (ChatGLM2): [MASK] [gMASK] [sMASK] sop eop get the ids after the n SentencePiece
//   pieces (n, n+1, ...: 64789.. for chatglm2-6b); text becomes pieces (EncodeAsPieces), each piece
//   its id, except that a piece spelled like one of those five takes the special id, as ChatGLM2's
//   convert_token_to_id does; with special tokens every encoding starts [gMASK] sop. eos is
//   SentencePiece's </s>, pad its <unk>, padding on the left. Decoding drops the five, bos, eos and
//   pad, as its convert_id_to_token does.
// LlamaTokenizer: ids straight from SentencePiece; with special tokens bos (<s>) first, and eos
//   last when add_eos_token says so; decoding drops bos, eos and unk (skip_special_tokens).

import { readFile } from "node:fs/promises";
import { SentencePieceProcessor } from "@sctg/sentencepiece-js";
import { UserError } from "../io/errors.js";
import type { EncodeOptions, Tokenizer } from "./types.js";

type Json = Record<string, unknown>;

export const CHATGLM2_SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop"] as const;

export type SentencePieceConvention = "chatglm2" | "llama";

/** The processor's piece count, its piece ids, and its text. */
class Pieces {
  readonly size: number;

  constructor(private readonly spp: SentencePieceProcessor) {
    this.size = this.countPieces();
  }

  pieces(text: string): string[] {
    return this.spp.encodePieces(text);
  }

  ids(text: string): number[] {
    return this.spp.encodeIds(text);
  }

  id(piece: string): number {
    const sv = new this.spp.sentencepiece.StringView(piece);
    const view = sv.getView();
    try {
      return this.spp.processor.PieceToId(view) as number;
    } finally {
      view.delete();
      sv.delete();
    }
  }

  decode(ids: number[]): string {
    return ids.length === 0 ? "" : (this.spp.decodeIds(Int32Array.from(ids)) as string);
  }

  /**
   * The WASM build exposes no GetPieceSize; SentencePiece's Decode fails the whole sequence (an
   * empty result) on an id outside the vocabulary, so an id is in range when [printable, id]
   * decodes to something. Ids are dense from 0, so a binary search finds the count.
   */
  private countPieces(): number {
    const probe = this.ids("a").find((id) => this.decode([id]) !== "");
    if (probe === undefined) return 0;
    const valid = (id: number): boolean => this.decode([probe, id]) !== "";
    let lo = probe; // valid
    let hi = 1 << 24; // invalid
    if (valid(hi)) throw new Error("sentencepiece: more than 2^24 pieces");
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (valid(mid)) lo = mid;
      else hi = mid;
    }
    return lo + 1;
  }
}

class SentencePieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly padId?: number;
  readonly paddingSide: "left" | "right";
  /** ChatGLM2's five specials by name → id. */
  readonly specials: ReadonlyMap<string, number>;
  private readonly dropped: Set<number>;
  private readonly addEos: boolean;
  private readonly addBos: boolean;

  constructor(
    private readonly sp: Pieces,
    readonly convention: SentencePieceConvention,
    config: Json,
  ) {
    // PieceToId answers the unk id for a piece it lacks, so that id stands for "absent" except
    // for the unk piece itself.
    const unk = sp.id("\u0000no such piece\u0000");
    const unkPiece = tokenText(config.unk_token) ?? "<unk>";
    const known = (piece: string | undefined): number | undefined => {
      if (piece === undefined) return undefined;
      const id = sp.id(piece);
      return id !== unk || piece === unkPiece ? id : undefined;
    };
    const bos = known(tokenText(config.bos_token) ?? "<s>");
    const eos = known(tokenText(config.eos_token) ?? "</s>");
    if (convention === "chatglm2") {
      this.specials = new Map(CHATGLM2_SPECIALS.map((s, i) => [s, sp.size + i]));
      this.vocabSize = sp.size + CHATGLM2_SPECIALS.length;
      if (bos !== undefined) this.bosId = bos;
      if (eos !== undefined) this.eosId = eos;
      this.padId = unk;
      this.paddingSide = config.padding_side === "right" ? "right" : "left";
      this.addBos = false;
      this.addEos = false;
    } else {
      this.specials = new Map();
      this.vocabSize = sp.size;
      if (bos !== undefined) this.bosId = bos;
      if (eos !== undefined) this.eosId = eos;
      const pad = known(tokenText(config.pad_token));
      if (pad !== undefined) this.padId = pad;
      this.paddingSide = config.padding_side === "left" ? "left" : "right";
      this.addBos = config.add_bos_token !== false && bos !== undefined;
      this.addEos = config.add_eos_token === true && eos !== undefined;
    }
    this.dropped = new Set([...this.specials.values(), ...[bos, eos, unk].filter((x): x is number => x !== undefined)]);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const special = opts.addSpecial !== false;
    if (this.convention === "chatglm2") {
      const ids = this.sp.pieces(text).map((p) => this.specials.get(p) ?? this.sp.id(p));
      return special ? [this.specials.get("[gMASK]")!, this.specials.get("sop")!, ...ids] : ids;
    }
    const ids = this.sp.ids(text);
    if (!special) return ids;
    return [...(this.addBos ? [this.bosId!] : []), ...ids, ...(this.addEos ? [this.eosId!] : [])];
  }

  decode(ids: number[]): string {
    return this.sp.decode(ids.filter((id) => Number.isInteger(id) && id >= 0 && id < this.sp.size && !this.dropped.has(id)));
  }
}

function tokenText(token: unknown): string | undefined {
  if (typeof token === "string") return token;
  if (typeof token === "object" && token !== null && typeof (token as Json).content === "string") return (token as Json).content as string;
  return undefined;
}

/** Which convention a folder's tokenizer.model follows, from its tokenizer_config.json and config.json. */
export function sentencePieceConvention(config: Json, modelConfig: Json, configPath: string): SentencePieceConvention {
  const cls = typeof config.tokenizer_class === "string" ? config.tokenizer_class : undefined;
  if (cls === "ChatGLMTokenizer") return "chatglm2";
  if (cls === "LlamaTokenizer" || cls === "LlamaTokenizerFast" || cls === "CodeLlamaTokenizer") return "llama";
  if (cls === undefined) {
    if (modelConfig.model_type === "chatglm") return "chatglm2";
    if (modelConfig.model_type === "llama") return "llama";
  }
  throw new UserError(
    `${configPath}: tokenizer_class ${cls === undefined ? "is not set" : JSON.stringify(cls)}, and pefc knows the tokenizer.model conventions of ChatGLMTokenizer and LlamaTokenizer only; add tokenizer.json, or set tokenizer_class`,
    { file: configPath },
  );
}

export async function loadSentencePiece(modelPath: string, convention: SentencePieceConvention, config: Json): Promise<Tokenizer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(modelPath);
  } catch (e) {
    throw new UserError(`${modelPath}: cannot read: ${(e as Error).message}`, { file: modelPath });
  }
  const spp = new SentencePieceProcessor();
  await spp.loadFromB64StringModel(bytes.toString("base64"));
  const status = spp.processor.status();
  const ok = status.ToString() as string;
  status.delete();
  if (ok !== "OK") throw new UserError(`${modelPath}: not a SentencePiece model (${ok})`, { file: modelPath });
  return new SentencePieceTokenizer(new Pieces(spp), convention, config);
}
