/**
 * The .peft tokens, in the order the lexer tries them. Keywords are tried before the identifier,
 * longest first, and each names the identifier as its longer alternative, so `init` is not `in`
 * followed by `it` and `eval_every` stays one identifier. Every keyword also belongs to the `Name`
 * category, so a key or a bare value may be a word that is a keyword elsewhere (`loss = all;`).
 */
import { createToken, Lexer, type TokenType } from "chevrotain";

export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n\uFEFF]+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: "Comment", pattern: /#[^\n]*/, group: Lexer.SKIPPED });

export const Name = createToken({ name: "Name", label: "a word", pattern: Lexer.NA });
/** A module name in a selector: any word but the selector's own keywords (in, layers, except, on) and base/all. */
export const SelectorWord = createToken({ name: "SelectorWord", pattern: Lexer.NA, label: "a module name" });
/** Every token but `;`, `{` and `}`: what an unknown statement may contain before it ends. */
export const Anything = createToken({ name: "Anything", pattern: Lexer.NA });

export const StringLit = createToken({
  name: "StringLit", label: "a string", categories: [Anything],
  pattern: /"(?:[^"\\\n\r]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/,
});
export const Regex = createToken({ name: "Regex", label: "a /regex/", categories: [Anything], pattern: /\/(?:[^/\\\n\r]|\\[^\n\r])+\/i?/ });
export const Role = createToken({ name: "Role", label: "an @role", categories: [Anything], pattern: /@[A-Za-z_][A-Za-z0-9_]*/ });
export const Ref = createToken({ name: "Ref", label: "a $selector", categories: [Anything], pattern: /\$[A-Za-z_][A-Za-z0-9_]*/ });
/** Dotted paths and globs: `self_attention.query_key_value`, `mlp.*_proj`, `layers.**.dense`, `*_proj`. */
export const Path = createToken({
  name: "Path", label: "a dotted path", categories: [Anything],
  pattern: /(?:[A-Za-z_*][A-Za-z0-9_*]*(?:\.[A-Za-z0-9_*]+)+|[A-Za-z0-9_]*\*[A-Za-z0-9_*]*)/,
});
export const NumberLit = createToken({
  name: "NumberLit", label: "a number", categories: [Anything],
  pattern: /-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?/,
});
export const Identifier = createToken({ name: "Identifier", label: "a name", pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [Name, Anything, SelectorWord] });

export const Semi = createToken({ name: "Semi", pattern: /;/, label: "';'" });
export const LCurly = createToken({ name: "LCurly", pattern: /\{/, label: "'{'" });
export const RCurly = createToken({ name: "RCurly", pattern: /\}/, label: "'}'" });
export const LBracket = createToken({ name: "LBracket", categories: [Anything], pattern: /\[/, label: "'['" });
export const RBracket = createToken({ name: "RBracket", categories: [Anything], pattern: /\]/, label: "']'" });
export const LParen = createToken({ name: "LParen", categories: [Anything], pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: "RParen", categories: [Anything], pattern: /\)/, label: "')'" });
export const Comma = createToken({ name: "Comma", categories: [Anything], pattern: /,/, label: "','" });
export const Colon = createToken({ name: "Colon", categories: [Anything], pattern: /:/, label: "':'" });
export const Equals = createToken({ name: "Equals", categories: [Anything], pattern: /=/, label: "'='" });
export const Percent = createToken({ name: "Percent", categories: [Anything], pattern: /%/, label: "'%'" });

const SELECTOR_KEYWORDS = new Set(["in", "layers", "except", "on", "true", "false", "base", "all"]);

function keyword(word: string): TokenType {
  return createToken({
    name: `Kw_${word}`,
    pattern: new RegExp(word),
    longer_alt: Identifier,
    categories: SELECTOR_KEYWORDS.has(word) ? [Name, Anything] : [Name, Anything, SelectorWord],
    label: `'${word}'`,
  });
}

const KEYWORDS = [
  "peft", "model", "select", "data", "train", "eval", "freeze", "unfreeze", "base", "all",
  "init", "from", "lora", "adalora", "ia3", "bitfit", "adapter", "houlsby", "pfeiffer", "parallel",
  "prefix", "p_tuning", "p_tuning_v2", "prompt_tuning", "mam", "unipelt", "combine", "save",
  "every", "to", "keep", "export", "merged", "on", "in", "layers", "except", "override",
  "true", "false", "token", "tokens", "step", "steps", "epoch", "epochs",
] as const;
export type Keyword = (typeof KEYWORDS)[number];

export const Kw = Object.fromEntries(KEYWORDS.map((w) => [w, keyword(w)])) as Record<Keyword, TokenType>;

/** Keywords longest first, so a keyword never shadows a longer one it is a prefix of. */
const keywordOrder = [...KEYWORDS].sort((a, b) => b.length - a.length).map((w) => Kw[w]);

export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  StringLit,
  Regex,
  Role,
  Ref,
  Path,
  NumberLit,
  ...keywordOrder,
  Identifier,
  Name,
  SelectorWord,
  Semi, LCurly, RCurly, LBracket, RBracket, LParen, RParen, Comma, Colon, Equals, Percent,
];

allTokens.push(Anything);

export const PeftLexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: false });
