/**
 * Pass adalora-orth-reg: adds AdaLoRA's orthogonal regulariser to the loss before autodiff, as
 * PEFT's AdaLoraModel.forward does: loss ← task loss + orth_reg_weight · R, R the mean over every
 * lora_A and lora_B of ‖C − I‖_F. The task loss is renamed `loss.task`; `loss` is the sum, so the
 * runtime reads and autodiff differentiates the regularised loss. No-op without AdaLoRA or with
 * orth_reg_weight 0.
 */
import { GraphBuilder, type Graph } from "../ir/index.js";
import { LOSS } from "../models/graph/index.js";
import type { PassContext } from "./context.js";

const MATRIX = /\.lora_([AB])$/;

export function adaloraOrthReg(graph: Graph, ctx: PassContext): Graph {
  const mats = graph.params.filter((p) => p.origin === "adalora" && p.trainable && MATRIX.test(p.name));
  const spec = ctx.spec.methods.find((m) => m.method === "adalora");
  if (mats.length === 0 || !spec || spec.method !== "adalora" || spec.options.orth_reg_weight === 0) return graph;
  const renamed = structuredClone(graph);
  const task = `${LOSS}.task`;
  for (const op of renamed.ops) {
    op.inputs = op.inputs.map((v) => (v === LOSS ? task : v));
    for (const o of op.outputs) if (o.name === LOSS) o.name = task;
  }
  const b = GraphBuilder.edit(renamed).atEnd();
  const kinds = mats.map((p) => (MATRIX.exec(p.name)![1] === "A" ? 0 : 1));
  const r = b.op("adalora_orth_reg", "", mats.map((p) => p.name), { kinds }, "adalora.orth_reg");
  const w = b.op("scale", "", [r], { factor: spec.options.orth_reg_weight }, "adalora.orth_reg_weighted");
  b.op("add", "", [task, w], {}, LOSS);
  return b.finish();
}
