/** The pefc command line, run in-process: exit codes, output streams, stdin, help. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), "pefc-cli-"));
const good = join(dir, "good.peft");
const bad = join(dir, "bad.peft");
writeFileSync(good, 'model "builtin:tiny-llama";\nlora r=4 on q_proj;\ntrain { steps = 2; }\n');
writeFileSync(bad, 'model "builtin:tiny-llama";\nlora rank=4 on q_proj;\ntrain { steps = 2; }\n');

describe("pefc check", () => {
  it("exits 0 on a clean file and 1 with file:line:col diagnostics", async () => {
    expect((await run("check", good)).code).toBe(0);
    const r = await run("check", good, bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${bad}:2:6: error P301: 'rank' is not a key of lora; did you mean 'r'?`);
  });

  it("--json prints one object per diagnostic", async () => {
    const r = await run("check", "--json", bad);
    const d = JSON.parse(r.out.trim().split("\n")[0]!) as { code: string; span: { line: number } };
    expect(d.code).toBe("P301");
    expect(d.span.line).toBe(2);
  });

  it("names a missing file", async () => {
    const r = await run("check", join(dir, "nope.peft"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("error P104: cannot read");
    expect(r.err).toContain("no such file");
  });

  it("refuses unknown flags and commands with usage, not a stack trace", async () => {
    const r = await run("check", "--frobnicate", good);
    expect(r.code).toBe(1);
    expect(r.err).toContain("Unknown option '--frobnicate'");
    expect(r.err).toContain("Usage: pefc check");
    const c = await run("chek", good);
    expect(c.code).toBe(1);
    expect(c.err).toContain("did you mean 'check'?");
  });

  it("--help works on every command", async () => {
    for (const cmd of ["check", "explain", "compile"]) {
      const r = await run(cmd, "--help");
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Usage: pefc ${cmd}`);
    }
    expect((await run("--help")).out).toContain("Commands:");
  });
});

describe("pefc explain", () => {
  it("prints the table's explanation", async () => {
    const r = await run("explain", "P401");
    expect(r.code).toBe(0);
    expect(r.out).toContain("Every selector term must match at least one module");
    expect((await run("explain", "P999")).code).toBe(1);
  });
});

describe("pefc compile", () => {
  it("--emit spec prints the spec with defaults written out", async () => {
    const r = await run("compile", good, "--emit", "spec");
    expect(r.code).toBe(0);
    const spec = JSON.parse(r.out) as { methods: { options: { alpha: number } }[]; train: { optimizer: { kind: string } } };
    expect(spec.methods[0]!.options.alpha).toBe(8);
    expect(spec.train.optimizer.kind).toBe("adamw");
  });

  it("--emit ast keeps spans", async () => {
    const r = await run("compile", good, "--emit", "ast");
    const ast = JSON.parse(r.out) as { statements: { kind: string; span: { line: number } }[] };
    expect(ast.statements.map((s) => s.kind)).toEqual(["model", "method", "train"]);
    expect(ast.statements[1]!.span.line).toBe(2);
  });

  it("prints diagnostics and exits 1 on errors", async () => {
    const r = await run("compile", bad, "--emit", "spec");
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
  });
});
