/** grammar/peft.ebnf is the reference grammar: every parser rule must be written down there. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parserInstance } from "../../src/parser/grammar.js";

describe("grammar/peft.ebnf", () => {
  const ebnf = readFileSync("grammar/peft.ebnf", "utf8");
  const documented = new Set([...ebnf.matchAll(/^([A-Za-z][A-Za-z0-9]*)\s*=/gm)].map((m) => m[1]!));
  const rules = parserInstance.getGAstProductions();

  it("documents every rule of the parser", () => {
    const names = Object.keys(rules);
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !documented.has(n))).toEqual([]);
  });

  it("documents no rule the parser lacks", () => {
    const lexical = new Set(["STRING", "REGEX", "ROLE", "REF", "PATH", "NUMBER", "IDENT", "NAME"]);
    expect([...documented].filter((n) => !(n in rules) && !lexical.has(n))).toEqual([]);
  });
});
