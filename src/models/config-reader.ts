/**
 * Reads hyper-parameters out of an untrusted config.json. Profiles need many numbers and must turn the
 * first bad one into a readable reason instead of throwing, so the reader remembers the first problem
 * and hands back a placeholder; the profile checks `error` once at the end.
 */

import type { ModelDims } from "./types.js";

/** More layers than any real model has: a guard against building millions of modules from a typo. */
export const MAX_LAYERS = 1024;

export class ConfigReader {
  error: string | undefined;

  constructor(readonly config: Record<string, unknown>) {}

  has(key: string): boolean {
    const v = this.config[key];
    return v !== undefined && v !== null;
  }

  /** A positive integer up to `max`; `fallback` is used when the key is absent or null. */
  int(key: string, fallback?: number, max = 2 ** 31 - 1): number {
    const v = this.pick(key, fallback);
    if (v === undefined) return this.fail(`config.json has no ${key}`);
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      return this.fail(`${key} must be a positive integer (got ${JSON.stringify(v)})`);
    }
    if (v > max) return this.fail(`${key} ${v} is larger than pefc supports (${max})`);
    return v;
  }

  float(key: string, fallback?: number): number {
    const v = this.pick(key, fallback);
    if (v === undefined) return this.fail(`config.json has no ${key}`);
    if (typeof v !== "number" || !Number.isFinite(v)) {
      return this.fail(`${key} must be a number (got ${JSON.stringify(v)})`);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.pick(key, fallback);
    if (typeof v !== "boolean") {
      this.fail(`${key} must be true or false (got ${JSON.stringify(v)})`);
      return fallback;
    }
    return v;
  }

  /** A token id: an integer, or the first of a list (Llama 3 lists several eos ids); absent → undefined. */
  tokenId(key: string): number | undefined {
    const v = this.config[key];
    const first = Array.isArray(v) ? v[0] : v;
    return typeof first === "number" && Number.isInteger(first) && first >= 0 ? first : undefined;
  }

  /** Records a reason found by the profile itself (e.g. a divisibility rule). */
  fail(reason: string): number {
    this.error ??= reason;
    return 1;
  }

  private pick(key: string, fallback: unknown): unknown {
    const v = this.config[key];
    return v === undefined || v === null ? fallback : v;
  }
}

/** Copies the special token ids the config names into the dims. */
export function readTokenIds(dims: ModelDims, r: ConfigReader): void {
  const bos = r.tokenId("bos_token_id");
  const eos = r.tokenId("eos_token_id");
  const pad = r.tokenId("pad_token_id");
  if (bos !== undefined) dims.bosTokenId = bos;
  if (eos !== undefined) dims.eosTokenId = eos;
  if (pad !== undefined) dims.padTokenId = pad;
}
