import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { cloneGraph, type Op } from "../../src/ir/graph.js";
import { graphFromJson, graphToJson, IR_SCHEMA_URL, validateGraphJson, type GraphJson } from "../../src/ir/json.js";
import { printGraph } from "../../src/ir/text.js";
import { verify } from "../../src/ir/verify.js";
import { buildBaseGraph } from "../../src/models/graph/index.js";
import { builtinProfile, folderProfile } from "./helpers.js";

const graphs = {
  "tiny-llama": buildBaseGraph(builtinProfile("tiny-llama")),
  "tiny-gpt2 (dropout)": buildBaseGraph(folderProfile("tiny-gpt2"), { dropout: true }),
  "chatglm2-6b": buildBaseGraph(folderProfile("chatglm2-6b-config")),
};

describe("IR JSON", () => {
  it("loads the schema from the package root's schemas/", () => {
    expect(fileURLToPath(IR_SCHEMA_URL)).toBe(fileURLToPath(new URL("../../schemas/ir.schema.json", import.meta.url)));
    expect(existsSync(IR_SCHEMA_URL)).toBe(true);
  });

  for (const [name, g] of Object.entries(graphs)) {
    it(`round-trips through JSON text and validates (${name})`, () => {
      const json = graphToJson(g);
      expect(json.version).toBe(1);
      expect(validateGraphJson(json)).toEqual([]);
      const back = graphFromJson(JSON.parse(JSON.stringify(json)));
      expect(back).toEqual(g);
      expect(printGraph(back)).toBe(printGraph(g));
      expect(verify(back)).toEqual([]);
    });
  }

  it("round-trips trainable parameters with their init", () => {
    const g = cloneGraph(graphs["tiny-llama"]);
    g.params.push({ name: "p.weight", shape: [3, 64], dtype: "f32", trainable: true, origin: "prompt", init: { kind: "rows", from: "model.embed_tokens.weight", rows: [5, 6, 7] } });
    expect(graphFromJson(JSON.parse(JSON.stringify(graphToJson(g))))).toEqual(g);
  });

  it("rejects what is not a graph, saying where", () => {
    const good = graphToJson(graphs["tiny-llama"]);
    const mutate = (f: (j: GraphJson) => void): string[] => {
      const j = structuredClone(good);
      f(j);
      return validateGraphJson(j);
    };
    expect(mutate((j) => delete (j as Partial<GraphJson>).version)).toEqual(["/: must have required property 'version'"]);
    expect(mutate((j) => Object.assign(j.params[0]!, { trainable: "yes" }))).toEqual(["/params/0/trainable: must be boolean"]);
    expect(mutate((j) => Object.assign(j.params[0]!, { dtype: "i32" }))).toEqual(["/params/0/dtype: must be equal to one of the allowed values"]);
    expect(mutate((j) => (j.params[0]!.shape = [0]))).toEqual(["/params/0/shape/0: must be >= 1"]);
    expect(mutate((j) => delete (j.ops[3] as Partial<Op>).attrs)).toEqual(["/ops/3: must have required property 'attrs'"]);
    expect(mutate((j) => Object.assign(j.ops[3]!, { extra: 1 }))).toEqual(["/ops/3: must NOT have additional properties"]);
    expect(mutate((j) => Object.assign(j.inputs[0]!, { dtype: "f64" }))).toEqual(["/inputs/0/dtype: must be equal to one of the allowed values"]);
    expect(mutate((j) => Object.assign(j.params[0]!, { init: { kind: "xavier" } })).length).toBeGreaterThan(0);
    expect(mutate((j) => (j.ops[0]!.outputs[0]!.shape = ["B", -1]))).toContain("/ops/0/outputs/0/shape/1: must match exactly one schema in oneOf");
    expect(validateGraphJson([])).toEqual(["/: must be object"]);
    expect(() => graphFromJson({ name: "x" })).toThrow(/not a pefc IR graph:\n {2}\/: must have required property/);
  });
});
