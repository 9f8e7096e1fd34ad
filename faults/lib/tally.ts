/**
 * What one family of fault cases found: how many cases ran, and each failure with the command
 * that replays it. A family passes when it has no failure; the counts it reports (crashes, hangs,
 * bytes lost...) are the ones docs/reliability.md promises to be zero.
 */
export interface Failure {
  what: string;
  why: string;
  replay: string;
}

export class Tally {
  tried = 0;
  readonly failures: Failure[] = [];
  /** Named counters printed on the summary line, in insertion order. */
  readonly counts = new Map<string, number>();
  notes: string[] = [];

  constructor(readonly family: string) {}

  add(name: string, n = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + n);
  }

  /** Declares counters that must appear (as 0) even when nothing increments them. */
  zero(...names: string[]): void {
    for (const n of names) if (!this.counts.has(n)) this.counts.set(n, 0);
  }

  fail(what: string, why: string, replay: string, counter?: string): void {
    this.failures.push({ what, why, replay });
    if (counter) this.add(counter);
  }

  /** Runs one case, turning a throw into a failure (a check that itself broke counts too). */
  async case(what: string, replay: string, body: () => Promise<void> | void): Promise<void> {
    this.tried++;
    try {
      await body();
    } catch (e) {
      // A check that failed is a wrong answer; anything else thrown is pefc (or the case) crashing.
      if (e instanceof CaseFailure) this.fail(what, e.message, replay);
      else this.fail(what, e instanceof Error ? (e.stack ?? e.message) : String(e), replay, "crashes");
    }
  }

  summary(): string {
    const counts = [...this.counts].map(([k, v]) => `${k} ${v}`).join(", ");
    const status = this.failures.length === 0 ? "ok" : `${this.failures.length} FAILED`;
    return `${this.family.padEnd(12)} ${String(this.tried).padStart(6)} cases  ${counts}  ${status}${this.notes.length ? `  (${this.notes.join("; ")})` : ""}`;
  }
}

/** A check inside a case: throws a plain message the tally records as the failure's reason. */
export function expectThat(cond: unknown, why: string): asserts cond {
  if (!cond) throw new CaseFailure(why);
}

export class CaseFailure extends Error {
  constructor(why: string) {
    super(why);
    this.name = "CaseFailure";
  }
}
