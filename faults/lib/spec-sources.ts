/** The specs the mutation fuzzer damages: every example and every golden case, as the user would have them. */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export interface SpecSource {
  /** Where the original lives; the damaged copy is checked as if it were this file. */
  file: string;
  text: string;
}

export function specSources(): SpecSource[] {
  const out: SpecSource[] = [];
  for (const dir of ["examples", "test/golden/cases"]) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".peft")).sort()) {
      const file = resolve(join(dir, f));
      out.push({ file, text: readFileSync(file, "utf8") });
    }
  }
  return out;
}
