/**
 * Damaged variants of real .peft files. Two layers: character edits (what the front end's own
 * fuzz test has always used: deletions, insertions, duplications, stray tokens, one bad byte) and
 * the fault suite's token-level and byte-level edits (token deletions and swaps, random bytes,
 * huge numbers, deep nesting, NUL bytes, malformed UTF-8, very long lines).
 */
import { int, pick, type Rng } from "./rng.js";

const STRAY = ["lora", "{", "}", ";", "=", "on", "layers[", "]", ":", "-1", "1e999", "99999999999999999999999", '"', "/", "@q", "$x", "except", ",", "(", ")", "%", "steps", "#", "\n", "adapter", "mam {", "train {", "\u00e9", "\ud83d"];

/** The character edits of test/frontend/fuzz.test.ts: 1-4 of them, or one stray byte (then bytes). */
export function mutateChars(src: string, r: Rng): string | Uint8Array {
  let s = src;
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * (s.length + 1));
    const op = Math.floor(r() * 6);
    if (op === 0) s = s.slice(0, i) + s.slice(i + 1 + Math.floor(r() * 8));
    else if (op === 1) s = s.slice(0, i) + String.fromCharCode(32 + Math.floor(r() * 95)) + s.slice(i);
    else if (op === 2) s = s.slice(0, i) + s.slice(i, i + 1 + Math.floor(r() * 20)) + s.slice(i);
    else if (op === 3) s = s.slice(0, i) + STRAY[Math.floor(r() * STRAY.length)] + s.slice(i);
    else if (op === 4) {
      const words = s.split(/(\s+)/);
      const j = Math.floor(r() * words.length);
      words.splice(j, 0, words[Math.floor(r() * words.length)] ?? "");
      s = words.join("");
    } else {
      const bytes = new TextEncoder().encode(s);
      const out = new Uint8Array(bytes.length + 1);
      const at = Math.min(bytes.length, Math.floor(r() * bytes.length));
      out.set(bytes.subarray(0, at));
      out[at] = [0xff, 0xc3, 0xe2, 0x80, 0xf4][Math.floor(r() * 5)]!;
      out.set(bytes.subarray(at), at + 1);
      return out;
    }
  }
  return s;
}

/** Splits source into tokens roughly as the lexer does (strings, words, numbers, single marks, runs of space). */
export function roughTokens(src: string): string[] {
  return src.match(/\s+|#[^\n]*|"(?:[^"\\\n]|\\.)*"?|[A-Za-z_$@][\w.$@*-]*|\d[\w.+-]*|[^\s]/g) ?? [];
}

const HUGE = ["1e999", "-1e999", "1e-999", "99999999999999999999999999999", "18446744073709551616", "9007199254740993", "0x7fffffff", "-0", "NaN", "Infinity", "1e308", "4294967296", "2147483648", "0.0000000000000000000001", "1_000", "1e+", "."];
const OPENERS = ["{", "[", "(", "layers[", "mam {", "combine {", "{ override layers[-1:] "];
const BAD_UTF8 = [[0xff], [0xfe], [0x80], [0xbf], [0xc0, 0x80], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xef, 0xbb, 0xbf]];

export type Mutation = "chars" | "token-delete" | "token-swap" | "token-duplicate" | "random-bytes" | "huge-number" | "deep-nesting" | "nul" | "bad-utf8" | "long-line" | "truncate";

export const MUTATIONS: readonly Mutation[] = ["chars", "token-delete", "token-swap", "token-duplicate", "random-bytes", "huge-number", "deep-nesting", "nul", "bad-utf8", "long-line", "truncate"];

const enc = new TextEncoder();

function spliceBytes(src: string, r: Rng, insert: readonly number[]): Uint8Array {
  const bytes = enc.encode(src);
  const at = int(r, 0, bytes.length);
  const out = new Uint8Array(bytes.length + insert.length);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(at), at + insert.length);
  return out;
}

/** One damaged variant of `src` by mutation `kind`. */
export function mutate(src: string, kind: Mutation, r: Rng): string | Uint8Array {
  const toks = roughTokens(src);
  const at = () => int(r, 0, Math.max(0, toks.length - 1));
  switch (kind) {
    case "chars":
      return mutateChars(src, r);
    case "token-delete": {
      for (let k = int(r, 1, 3); k > 0; k--) toks.splice(at(), 1 + (r() < 0.2 ? int(r, 1, 6) : 0));
      return toks.join("");
    }
    case "token-swap": {
      for (let k = int(r, 1, 3); k > 0; k--) {
        const i = at();
        const j = r() < 0.5 ? Math.min(toks.length - 1, i + 1 + int(r, 0, 2)) : at();
        [toks[i], toks[j]] = [toks[j]!, toks[i]!];
      }
      return toks.join("");
    }
    case "token-duplicate": {
      const i = at();
      toks.splice(at(), 0, ...toks.slice(i, i + int(r, 1, 5)));
      return toks.join("");
    }
    case "random-bytes":
      return spliceBytes(src, r, Array.from({ length: int(r, 1, 16) }, () => int(r, 0, 255)));
    case "huge-number": {
      const nums = toks.map((t, i) => (/^\d/.test(t) ? i : -1)).filter((i) => i >= 0);
      const i = nums.length > 0 && r() < 0.8 ? pick(r, nums) : at();
      toks[i] = pick(r, HUGE);
      return toks.join("");
    }
    case "deep-nesting": {
      const depth = pick(r, [50, 500, 5000, 50000]);
      const open = pick(r, OPENERS);
      const close = r() < 0.5 ? "" : { "{": "}", "[": "]", "(": ")" }[open.trim().slice(-1)] ?? "}";
      toks.splice(at(), 0, open.repeat(depth) + close.repeat(depth));
      return toks.join("");
    }
    case "nul":
      return spliceBytes(src, r, Array.from({ length: int(r, 1, 3) }, () => 0));
    case "bad-utf8":
      return spliceBytes(src, r, pick(r, BAD_UTF8));
    case "long-line": {
      const unit = pick(r, ["a", "9", " ", "\"x", "é", "#"]);
      toks.splice(at(), 0, unit.repeat(pick(r, [10_000, 50_000, 150_000])));
      return toks.join("");
    }
    case "truncate": {
      const bytes = enc.encode(src);
      return bytes.subarray(0, int(r, 0, bytes.length));
    }
  }
}
