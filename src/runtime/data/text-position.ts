// Offsets to 1-based line/column, and V8's JSON.parse messages ("... in JSON at position 7")
// restated relative to where the parsed text sits in the file.

export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) this.starts.push(i + 1);
  }

  /** 1-based line of `offset`. */
  line(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  /** 1-based column of `offset` (UTF-16 units). */
  column(offset: number): number {
    return offset - this.starts[this.line(offset) - 1]! + 1;
  }
}

/** Parses `text` as JSON; on failure returns the message without V8's position and the offset it named. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; message: string; offset?: number } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    const raw = (e as Error).message;
    const m = /\s*in JSON at position (\d+)(?: \(line \d+ column \d+\))?/.exec(raw);
    const message = `bad JSON: ${m ? raw.slice(0, m.index) + raw.slice(m.index + m[0].length) : raw}`;
    return m ? { ok: false, message, offset: Number(m[1]) } : { ok: false, message };
  }
}

export function describeJsonValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return "a string";
  if (typeof v === "number") return "a number";
  if (typeof v === "boolean") return "a boolean";
  return typeof v;
}
