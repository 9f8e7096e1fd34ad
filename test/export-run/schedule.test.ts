/**
 * The learning rate train.py sets at every optimizer step equals pefc's (runtime/train/schedule.ts)
 * for each schedule and warm-up form: the generated lr_at/warmup_steps and their constants are
 * lifted out of train.py with Python's ast module (train.py itself needs torch and PEFT) and run
 * under python3.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { checkSource } from "../../src/frontend.js";
import { lrAt } from "../../src/runtime/train/schedule.js";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const work = mkdtempSync(join(tmpdir(), "pefc-export-schedule-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const LIFT = `import ast, json, sys
src = open(sys.argv[1]).read()
keep = [n for n in ast.parse(src).body if (isinstance(n, ast.FunctionDef) and n.name in ("warmup_steps", "lr_at")) or (isinstance(n, ast.Assign) and n.targets[0].id in ("LR", "SCHEDULE", "WARMUP"))]
env = {"math": __import__("math")}
exec(compile(ast.Module(body=keep, type_ignores=[]), "train.py", "exec"), env)
total = int(sys.argv[2])
print(json.dumps([env["lr_at"](k, total) for k in range(total)]))`;

const VARIANTS = [
  ["cosine", "warmup = 10%;"],
  ["linear", "warmup = 3 steps;"],
  ["constant", "warmup = 0 steps;"],
  ["linear", "warmup = 25%;"],
] as const;

describe("train.py's learning rate", () => {
  VARIANTS.forEach(([schedule, warmup], i) => {
    it(`${schedule}, ${warmup}`, async () => {
      const text = readFileSync(join(ROOT, "examples/stories-lora.peft"), "utf8")
        .replace('"../../shared/models/stories260K/hf"', JSON.stringify(resolve(ROOT, "../shared/models/stories260K/hf")))
        .replace('"data/instructions.jsonl"', JSON.stringify(join(ROOT, "examples/data/instructions.jsonl")))
        .replace("schedule = cosine;", `schedule = ${schedule};`)
        .replace("warmup = 10%;", warmup)
        .replace("lr = 1e-3;", "lr = 3e-4;");
      const spec = join(work, `v${i}.peft`);
      writeFileSync(spec, text);
      const out = join(work, `v${i}`);
      expect(await main(["export-run", spec, "--to", out], { out: () => undefined, err: (s) => expect.fail(s) })).toBe(0);
      const checked = checkSource(text, spec);
      if (!checked.ok) throw new Error("variant does not check");
      const total = 28; // 28 train records after the 4 held out, batch 4: 7 steps x 4 epochs
      const got = JSON.parse(execFileSync("/usr/bin/python3", ["-c", LIFT, join(out, "train.py"), String(total)], { encoding: "utf8" })) as number[];
      const want = Array.from({ length: total }, (_, k) => lrAt(checked.spec.train, k, total));
      expect(got.length).toBe(total);
      got.forEach((x, k) => expect(x, `step ${k}`).toBeCloseTo(want[k]!, 15));
      expect(new Set(got).size).toBeGreaterThan(schedule === "constant" ? 0 : 3);
    });
  });
});
