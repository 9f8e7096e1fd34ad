/**
 * Golden tests: every case under cases/ is compiled (front end, base graph, pipeline, verify() after
 * every pass) and its outputs compared with the files beside it:
 *   NAME.diag  the diagnostics, one formatted per line, the file shown as NAME.peft (always);
 *   NAME.ir    printGraph of the graph after the last pass, or after the pass a `# until: PASS`
 *              comment names (only when the case compiles without errors).
 * `PEFC_ACCEPT=1 npx vitest run test/golden` (npm run golden:accept) rewrites them; otherwise a
 * missing or stale expected file is a failure, so every change in output is a reviewed diff.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatDiagnostic, hasErrors } from "../../src/diagnostics/index.js";
import { checkSource } from "../../src/frontend.js";
import { printGraph, verify } from "../../src/ir/index.js";
import { compileSpec } from "../../src/passes/compile.js";
import { passNames } from "../../src/passes/pipeline.js";

const CASES = fileURLToPath(new URL("./cases/", import.meta.url));
const ACCEPT = process.env["PEFC_ACCEPT"] === "1";

/** What a case produces: file suffix → text. */
function run(name: string, text: string): Map<string, string> {
  const until = /^#\s*until:\s*(\S+)\s*$/m.exec(text)?.[1];
  if (until !== undefined && !passNames().includes(until)) throw new Error(`${name}: no pass named '${until}'`);
  const fe = checkSource(text, `${name}.peft`);
  const diagnostics = [...fe.diagnostics];
  let ir: string | undefined;
  if (fe.ok) {
    const r = compileSpec(fe.spec, {
      baseDir: CASES,
      ...(until !== undefined ? { until } : {}),
      after: (pass, g) => {
        const errs = verify(g);
        if (errs.length) throw new Error(`${name}: verify() after ${pass.name}:\n${errs.slice(0, 10).join("\n")}`);
      },
    });
    diagnostics.push(...r.diagnostics);
    if (r.graph && !hasErrors(diagnostics)) ir = printGraph(r.graph);
  }
  const out = new Map<string, string>();
  out.set(".diag", diagnostics.map((d) => `${formatDiagnostic(d)}\n`).join(""));
  if (ir !== undefined) out.set(".ir", ir);
  return out;
}

const cases = readdirSync(CASES).filter((f) => f.endsWith(".peft")).sort();

describe("golden", () => {
  it("has cases", () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  for (const file of cases) {
    const name = basename(file, ".peft");
    it(name, () => {
      const produced = run(name, readFileSync(`${CASES}${file}`, "utf8"));
      for (const suffix of [".diag", ".ir"]) {
        const path = `${CASES}${name}${suffix}`;
        const got = produced.get(suffix);
        if (ACCEPT) {
          if (got === undefined) rmSync(path, { force: true });
          else writeFileSync(path, got);
          continue;
        }
        if (got === undefined) {
          expect(existsSync(path), `${name}${suffix} is stale: the case produces no ${suffix}`).toBe(false);
          continue;
        }
        expect(existsSync(path), `${name}${suffix} is missing; run npm run golden:accept and review it`).toBe(true);
        expect(got).toBe(readFileSync(path, "utf8"));
      }
    });
  }
});
