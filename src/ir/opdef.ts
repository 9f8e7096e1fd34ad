/**
 * The shape of an entry in the op table, and the generic checks every entry gets for free (arity,
 * attribute kinds). Kept apart from the table so the table reads as a list of ops and nothing else.
 */
import { isDim, type Dim, type TensorType } from "./shape.js";

/** `int`/`float` are numbers, `dim` a number or symbolic dimension, `ints`/`dims` lists; a string array is an enum. */
export type AttrKind = "int" | "float" | "bool" | "string" | "dim" | "ints" | "dims" | readonly string[];

export interface AttrSpec {
  kind: AttrKind;
  optional?: boolean;
}

/** Attribute values are JSON values: the graph stays plain data. */
export type AttrValue = number | boolean | string | Dim[];
export type Attrs = Record<string, AttrValue>;

type ValueOf<K> = K extends "int" | "float"
  ? number
  : K extends "bool"
    ? boolean
    : K extends "string"
      ? string
      : K extends "dim"
        ? Dim
        : K extends "ints"
          ? number[]
          : K extends "dims"
            ? Dim[]
            : K extends readonly (infer E)[]
              ? E
              : never;

/** The typed attribute record a shape rule receives, derived from the entry's attribute specs. */
export type AttrsOf<S extends Record<string, AttrSpec>> = {
  [k in keyof S as S[k]["optional"] extends true ? never : k]: ValueOf<S[k]["kind"]>;
} & {
  [k in keyof S as S[k]["optional"] extends true ? k : never]?: ValueOf<S[k]["kind"]>;
};

/** What a shape rule returns: the output types, or why the inputs do not fit. */
export type InferResult = TensorType[] | string;

export interface OpDef {
  /** One line for `pefc explain`-style listings and the IR docs. */
  doc: string;
  /** Input slot names, in order: `bias?` is optional, `xs...` takes one or more (last slot only). */
  inputs: readonly string[];
  attrs: Readonly<Record<string, AttrSpec>>;
  infer(inputs: TensorType[], attrs: Attrs): InferResult;
}

/** Typed constructor for a table entry: the rule sees attributes already checked against `attrs`. */
export function defineOp<const S extends Record<string, AttrSpec>>(d: {
  doc: string;
  inputs: readonly string[];
  attrs: S;
  infer(inputs: TensorType[], attrs: AttrsOf<S>): InferResult;
}): OpDef {
  return { doc: d.doc, inputs: d.inputs, attrs: d.attrs, infer: (ins, a) => d.infer(ins, a as AttrsOf<S>) };
}

/** Smallest and largest number of inputs an entry takes. */
export function arity(def: OpDef): { min: number; max: number } {
  let min = 0;
  let max = 0;
  for (const s of def.inputs) {
    if (s.endsWith("...")) return { min: min + 1, max: Infinity };
    max++;
    if (!s.endsWith("?")) min = max;
  }
  return { min, max };
}

function kindOk(kind: AttrKind, v: AttrValue): boolean {
  if (Array.isArray(kind)) return typeof v === "string" && kind.includes(v);
  switch (kind) {
    case "int":
      return typeof v === "number" && Number.isInteger(v);
    case "float":
      return typeof v === "number" && Number.isFinite(v);
    case "bool":
      return typeof v === "boolean";
    case "string":
      return typeof v === "string";
    case "dim":
      return isDim(v);
    case "ints":
      return Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isInteger(x));
    case "dims":
      return Array.isArray(v) && v.every((x) => isDim(x));
  }
  return false;
}

function kindName(kind: AttrKind): string {
  return Array.isArray(kind) ? kind.map((k) => `"${k}"`).join(" | ") : String(kind);
}

/** Checks attribute names and kinds against an entry; undefined when they fit. */
export function checkAttrs(def: OpDef, attrs: Attrs): string | undefined {
  for (const k of Object.keys(attrs)) {
    if (!(k in def.attrs)) return `unknown attribute '${k}'`;
  }
  for (const [k, spec] of Object.entries(def.attrs)) {
    const v = attrs[k];
    if (v === undefined) {
      if (!spec.optional) return `missing attribute '${k}'`;
      continue;
    }
    if (!kindOk(spec.kind, v)) return `attribute '${k}' must be ${kindName(spec.kind)}, got ${JSON.stringify(v)}`;
  }
  return undefined;
}
