// Tokenizers: Hugging Face tokenizer.json folders and the byte tokenizer of built-in models.
export type { Tokenizer, EncodeOptions } from "./types.js";
export { ByteTokenizer } from "./byte.js";
export { loadTokenizer } from "./hf.js";
export { CHATGLM2_SPECIALS, loadSentencePiece, sentencePieceConvention, type SentencePieceConvention } from "./sentencepiece.js";
