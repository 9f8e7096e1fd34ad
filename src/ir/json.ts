/**
 * The JSON form of a graph (`--emit ir --json`, saved plans) and its validation against the JSON
 * Schema shipped in the package's `schemas/`. The schema is found relative to this module, which
 * sits two levels below the package root both as `src/ir/json.ts` and as compiled `dist/ir/json.js`.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ValidateFunction } from "ajv";
import { cloneGraph, type Graph } from "./graph.js";

export const IR_JSON_VERSION = 1;

export const IR_SCHEMA_URL = new URL("../../schemas/ir.schema.json", import.meta.url);

export interface GraphJson extends Graph {
  version: number;
}

let validator: ValidateFunction | undefined;

function validate(): ValidateFunction {
  if (!validator) {
    const schema = JSON.parse(readFileSync(IR_SCHEMA_URL, "utf8")) as object;
    validator = new Ajv({ allErrors: true, strict: true }).compile(schema);
  }
  return validator;
}

/** Schema violations as `path: message` lines; empty when the JSON is a well-formed graph. */
export function validateGraphJson(json: unknown): string[] {
  const v = validate();
  if (v(json)) return [];
  return (v.errors ?? []).map((e) => `${e.instancePath || "/"}: ${e.message ?? "invalid"}`);
}

export function graphToJson(g: Graph): GraphJson {
  const c = cloneGraph(g);
  const j: GraphJson = { version: IR_JSON_VERSION, name: c.name, inputs: c.inputs, params: c.params, ops: c.ops, outputs: c.outputs };
  if (c.saved) j.saved = c.saved;
  return j;
}

/** Reads a graph from its JSON form; throws with every schema violation when it is not one. */
export function graphFromJson(json: unknown): Graph {
  const errs = validateGraphJson(json);
  if (errs.length) throw new Error(`not a pefc IR graph:\n  ${errs.join("\n  ")}`);
  const j = structuredClone(json) as GraphJson;
  const g: Graph = { name: j.name, inputs: j.inputs, params: j.params, ops: j.ops, outputs: j.outputs };
  if (j.saved) g.saved = j.saved;
  return g;
}
