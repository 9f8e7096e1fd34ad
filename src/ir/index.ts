/** The IR's public surface, for passes, codegen and the embedding API. */
export * from "./graph.js";
export { GraphBuilder, type ParamSpec } from "./builder.js";
export { OPS, opDef, inferOp } from "./ops.js";
export { defineOp, arity, checkAttrs, type OpDef, type AttrSpec, type AttrKind, type AttrsOf, type InferResult } from "./opdef.js";
export * from "./shape.js";
export { inferGraph, retypeGraph, type Inference } from "./infer.js";
export { verify } from "./verify.js";
export { printGraph } from "./text.js";
export { graphToJson, graphFromJson, validateGraphJson, IR_SCHEMA_URL, IR_JSON_VERSION, type GraphJson } from "./json.js";
