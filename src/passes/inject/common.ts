/**
 * What every inject pass shares: a builder that stamps each parameter it adds with the method that
 * owns it (origin, spec index, trainable), the inits PEFT and AdapterHub use, and lookups of the
 * places a method attaches to (a module's linear op, a layer's residual adds and attention op).
 * The base graphs name those places the same way in every architecture (`<layer>.attn_residual`,
 * `<layer>.mlp_residual`), which is what lets one pass serve llama, chatglm2 and gpt2.
 */
import type { MethodSpec } from "../../check/spec.js";
import { GraphBuilder, type Graph, type Op, type ParamInit } from "../../ir/index.js";
import type { ModuleInfo } from "../../models/types.js";
import type { PassContext } from "../context.js";

export type MethodOf<K extends MethodSpec["method"]> = Extract<MethodSpec, { method: K }>;

/** The spec methods of the given kinds, with their indices into spec.methods. */
export function methodsOf<K extends MethodSpec["method"]>(ctx: PassContext, ...kinds: K[]): { m: MethodOf<K>; i: number }[] {
  const out: { m: MethodOf<K>; i: number }[] = [];
  ctx.spec.methods.forEach((m, i) => {
    if ((kinds as string[]).includes(m.method)) out.push({ m: m as MethodOf<K>, i });
  });
  return out;
}

/** A GraphBuilder that records which spec method added each parameter, so `Param.method` is set. */
export class Injector {
  readonly b: GraphBuilder;
  private readonly owners = new Map<string, number>();

  constructor(graph: Graph) {
    this.b = GraphBuilder.edit(graph);
  }

  /** A new trainable parameter (frozen only when `trainable: false`), owned by method `method`. */
  param(name: string, shape: number[], init: ParamInit, owner: { origin: string; method: number; trainable?: boolean }): string {
    this.b.param({ name, shape, init, origin: owner.origin, trainable: owner.trainable ?? true });
    this.owners.set(name, owner.method);
    return name;
  }

  finish(): Graph {
    const g = this.b.finish();
    for (const p of g.params) {
      const m = this.owners.get(p.name);
      if (m !== undefined) p.method = m;
    }
    return g;
  }
}

/** torch's default for a Linear weight and bias (and PEFT's LoRA A): kaiming-uniform a=√5 = U(±1/√fan_in). */
export function torchLinearInit(fanIn: number): ParamInit {
  const bound = 1 / Math.sqrt(fanIn);
  return { kind: "uniform", low: -bound, high: bound };
}

/** nn.Embedding's default, N(0, 1). */
export const EMBEDDING_INIT: ParamInit = { kind: "normal", mean: 0, std: 1 };

/** BERT's initializer range, N(0, 0.02), used by AdaLoRA, AdapterHub's bert init and its gates. */
export const BERT_INIT: ParamInit = { kind: "normal", mean: 0, std: 0.02 };

/** The base linear op of a module: the one reading the module's own weight (method branches are linear ops under the same module). */
export function linearOp(b: GraphBuilder, module: ModuleInfo): Op {
  const weight = module.tiedTo ?? module.params.find((p) => p.name.endsWith(".weight"))?.name;
  const op = weight ? b.uses(weight).find((u) => u.op.op === "linear" && u.slot === 1 && u.op.module === module.path)?.op : undefined;
  if (!op) throw new Error(`no linear op for module '${module.path}'`);
  return op;
}

/** The op defining a value the base graph is known to have. */
export function producerOf(b: GraphBuilder, value: string): Op {
  const op = b.producer(value);
  if (!op) throw new Error(`no op defines '${value}'`);
  return op;
}

/** The layer's path in the layer container: `model.layers.3`. */
export function layerPath(ctx: PassContext, layer: number): string {
  return `${ctx.profile.layerContainer}.${layer}`;
}

/** The attention op of a layer and the input of its first projection (the normalised sub-layer input). */
export function attentionOf(b: GraphBuilder, ctx: PassContext, layer: number): { attn: Op; input: string; module: string } {
  const prefix = `${layerPath(ctx, layer)}.`;
  const g = b.finish();
  const i = g.ops.findIndex((op) => op.op === "attention" && op.module.startsWith(prefix));
  if (i < 0) throw new Error(`no attention op in layer ${layer}`);
  const module = g.ops[i]!.module;
  const proj = g.ops.find((op) => op.op === "linear" && op.module.startsWith(`${module}.`));
  if (!proj) throw new Error(`no projection in ${module}`);
  return { attn: producerOf(b, g.ops[i]!.outputs[0]!.name), input: proj.inputs[0]!, module };
}
