/**
 * Pass optimizer: appends one optimizer step to the training graph, as the spec's train block asks.
 * With clip > 0 every gradient first goes through one clip_grad_norm (torch.nn.utils.clip_grad_norm_
 * over all trainable gradients together); then one update op per trainable parameter (sgd_update,
 * adam_update or adamw_update) reads the parameter, its gradient, its state inputs
 * (`optim.m.<p>`, `optim.v.<p>`, `optim.momentum.<p>`), the learning rate `optim.lr` and the step
 * number `optim.step`, and outputs `next.<p>` and `next.<state>`. The update ops run once per
 * optimizer step, after the runtime has summed the gradients of grad_accum micro-batches (each
 * already scaled by 1/grad_accum by autodiff).
 */
import { GraphBuilder, type Graph } from "../ir/index.js";
import { clippedName, GRAD_NORM, gradName, LR_INPUT, nextName, stateName, STEP_INPUT } from "../ir/step-names.js";
import type { PassContext } from "./context.js";

const moduleOf = (param: string): string => param.slice(0, Math.max(0, param.lastIndexOf(".")));

export function optimizer(graph: Graph, ctx: PassContext): Graph {
  const t = ctx.spec.train;
  const trained = graph.params.filter((p) => p.trainable && graph.outputs.includes(gradName(p.name)));
  if (trained.length === 0) return graph;
  const b = GraphBuilder.edit(graph).atEnd();
  const lr = b.input(LR_INPUT, "f32", []);
  const step = b.input(STEP_INPUT, "f32", []);
  let grads = trained.map((p) => gradName(p.name));
  if (t.clip > 0) {
    const outs = b.opN("clip_grad_norm", "", grads, { max_norm: t.clip }, [...trained.map((p) => clippedName(p.name)), GRAD_NORM]);
    grads = outs.slice(0, -1);
    b.output(GRAD_NORM);
  }
  const o = t.optimizer;
  trained.forEach((p, i) => {
    const mod = moduleOf(p.name);
    const g = grads[i]!;
    if (o.kind === "sgd") {
      const withMomentum = o.momentum !== 0;
      const buf = withMomentum ? [b.input(stateName("momentum", p.name), "f32", p.shape)] : [];
      const attrs = { momentum: o.momentum, dampening: 0, weight_decay: o.weightDecay, nesterov: o.nesterov };
      const names = [nextName(p.name), ...buf.map(nextName)];
      b.opN("sgd_update", mod, [p.name, g, lr, step, ...buf], attrs, names).forEach((n) => b.output(n));
      return;
    }
    const m = b.input(stateName("m", p.name), "f32", p.shape);
    const v = b.input(stateName("v", p.name), "f32", p.shape);
    const attrs = { beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weight_decay: o.weightDecay };
    const kind = o.kind === "adamw" ? "adamw_update" : "adam_update";
    b.opN(kind, mod, [p.name, g, m, v, lr, step], attrs, [nextName(p.name), nextName(m), nextName(v)]).forEach((n) => b.output(n));
  });
  const out = b.finish();
  if (graph.saved) out.saved = graph.saved;
  return out;
}
