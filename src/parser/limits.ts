/**
 * Bounds on what the parser is given, checked on the tokens. Real specs nest three or four levels
 * and hold a few hundred tokens; a damaged or hostile file nesting thousands of levels would
 * overflow the parser's recursion, and one of hundreds of thousands of stray tokens keeps its
 * error recovery busy for minutes (about 0.1 ms per bad token). Past a bound only the tokens
 * before it are parsed.
 */
import type { IToken } from "chevrotain";

export const MAX_NESTING = 32;
export const MAX_TOKENS = 20_000;

const OPEN = new Set(["LCurly", "LBracket", "LParen"]);
const CLOSE = new Set(["RCurly", "RBracket", "RParen"]);

/** Index of the first token that opens level MAX_NESTING + 1, or -1. */
export function tooDeepAt(tokens: readonly IToken[]): number {
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const name = tokens[i]!.tokenType.name;
    if (OPEN.has(name)) {
      if (++depth > MAX_NESTING) return i;
    } else if (CLOSE.has(name) && depth > 0) depth--;
  }
  return -1;
}
