/**
 * Which positions a KV-cache decoder must run to answer next(ids): the virtual tokens of prompt
 * methods once, then every token past the longest prefix the cache already holds (so a chat turn
 * reuses the history's keys and values, and a different prompt overwrites from where it differs).
 * The last position is always run: its logits are the answer.
 */
import { UserError } from "../io/errors.js";

export interface StepInput {
  /** Token id (0 for a virtual token: its row comes from the prompt rows). */
  id: number;
  /** Absolute position, virtual tokens counted: the cache row and the RoPE/learned position. */
  pos: number;
  /** Row of [prompt rows | token] the step embeds: min(pos, P). */
  row: number;
}

export class CachePlan {
  private cached: number[] = [];
  private virtualDone = false;

  /** `virtual` positions precede the tokens; the cache has `maxLen` rows. */
  constructor(
    readonly virtual: number,
    readonly maxLen: number,
  ) {}

  /** Tokens the cache has room for. */
  get maxTokens(): number {
    return this.maxLen - this.virtual;
  }

  /** The steps that bring the cache to `ids`; call commit(ids) once they have run. */
  plan(ids: readonly number[]): StepInput[] {
    if (ids.length === 0) throw new Error("decoder: next() needs at least one token");
    if (ids.length > this.maxTokens)
      throw new UserError(`the sequence has ${ids.length} tokens, more than the ${this.maxTokens} the KV cache was sized for`);
    let keep = 0;
    while (keep < this.cached.length && keep < ids.length && this.cached[keep] === ids[keep]) keep++;
    keep = Math.min(keep, ids.length - 1);
    // Rows past `keep` are about to be overwritten: a run that fails midway leaves this true.
    this.cached.length = keep;
    const P = this.virtual;
    const steps: StepInput[] = [];
    if (!this.virtualDone) for (let v = 0; v < P; v++) steps.push({ id: 0, pos: v, row: v });
    for (let i = keep; i < ids.length; i++) steps.push({ id: ids[i]!, pos: P + i, row: P });
    return steps;
  }

  commit(ids: readonly number[]): void {
    this.cached = ids.slice();
    this.virtualDone = true;
  }
}
