/**
 * Which frozen weights may be stored as f16 (precision f16 on a device with shader-f16): those
 * every reader takes as a linear weight or an embedding table, the operands whose kernels read f16
 * (linear, linear_fused, linear_grad_input, silu_mul_linear, linear_grad_silu_mul and embedding, all at slot 1; gate_up_silu_mul
 * at slots 1 and 2; linear_grad_input_sum at each term's weight slot). A weight anything else
 * reads (a norm weight) stays f32. GPT-2-small's 154 MB vocabulary table then fits llvmpipe's
 * 128 MiB storage binding.
 */
import type { Graph } from "../../../ir/index.js";

const F16_READERS = new Set(["linear", "linear_fused", "linear_grad_input", "silu_mul_linear", "linear_grad_silu_mul", "embedding"]);

export function chooseF16Weights(graphs: readonly Graph[]): Set<string> {
  const frozen = new Set<string>();
  for (const g of graphs) for (const p of g.params) if (!p.trainable && p.origin === "base" && p.dtype !== "i32") frozen.add(p.name);
  const out = new Set<string>();
  const bad = new Set<string>();
  for (const g of graphs)
    for (const op of g.ops)
      op.inputs.forEach((v, slot) => {
        if (!frozen.has(v)) return;
        if ((F16_READERS.has(op.op) && slot === 1) || (op.op === "gate_up_silu_mul" && slot > 0) || (op.op === "linear_grad_input_sum" && slot < 2 * (op.attrs.terms as number) && slot % 2 === 1)) out.add(v);
        else bad.add(v);
      });
  for (const v of bad) out.delete(v);
  return out;
}
