/**
 * How many records the train data holds, for steps per epoch, without tokenizing: JSON lines are
 * counted by non-blank lines, JSON arrays by their length, CSV by rows after the header. A missing
 * file is not an error here (plan needs no data), only a note.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Spec } from "../check/spec.js";
import { parseRows } from "../runtime/data/csv.js";

export async function countRecords(spec: Spec): Promise<{ count?: number; warning?: string }> {
  const d = spec.data.train;
  if (!d?.file) return {};
  const path = resolve(dirname(spec.file), d.file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return { warning: `note: ${d.file} is not readable from here; steps per epoch are left unknown` };
  }
  let count = 0;
  if (d.format === "jsonl") count = text.split("\n").filter((l) => l.trim() !== "").length;
  else if (d.format === "json") {
    try {
      const v: unknown = JSON.parse(text);
      count = Array.isArray(v) ? v.length : 0;
    } catch {
      return { warning: `note: ${d.file} is not valid JSON; steps per epoch are left unknown` };
    }
  } else {
    try {
      count = Math.max(0, parseRows(text, d.file).length - 1);
    } catch {
      return { warning: `note: ${d.file} is not valid CSV; steps per epoch are left unknown` };
    }
  }
  if (d.holdout && spec.data.eval === undefined) return { count };
  const eval_ = spec.data.eval;
  if (eval_?.holdout) count -= "share" in eval_.holdout ? Math.ceil(count * eval_.holdout.share) : eval_.holdout.count;
  return { count: Math.max(0, count) };
}
