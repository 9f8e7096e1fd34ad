// Reference kernels of the fused ops (src/ir/ops-fused.ts): the same arithmetic as the ops they
// replace, one after the other, so a fused graph computes what the unfused one does.
import { siluMulBackward, siluMulForward } from '../elementwise.js';
import { like } from '../floats.js';
import { linearForward } from '../linear.js';
import { BACKWARD_KERNELS } from './backward.js';
import { asFloats, asInts } from './tensor.js';
import { FORWARD_KERNELS, linearShape, type Kernel } from './forward.js';

export const FUSED_KERNELS: Readonly<Record<string, Kernel>> = {
  silu_mul: ([gate, up]) => [siluMulForward(asFloats(gate!), asFloats(up!))],
  silu_mul_backward: ([gate, up, dy]) => siluMulBackward(asFloats(gate!), asFloats(up!), asFloats(dy!)),
  embedding_rows: ([ids, table], a) => {
    const t = asFloats(table!);
    const [rows, D] = table!.shape as [number, number];
    const start = a['start'] as number;
    const id = asInts(ids!);
    const out = like(t, id.length * D);
    for (let i = 0; i < id.length; i++) {
      const r = id[i]! - start;
      if (r >= 0 && r < rows) for (let d = 0; d < D; d++) out[i * D + d] = t[r * D + d]!;
    }
    return [out];
  },

  cross_entropy_grad: ([logits, labels, dloss], a, outs, k) => [
    FORWARD_KERNELS['cross_entropy']!([logits!, labels!], a, [outs[0]!], k)[0]!,
    BACKWARD_KERNELS['cross_entropy_backward']!([logits!, labels!, dloss!], a, [outs[1]!], k)[0]!,
  ],

  linear_grad_silu_mul: ([dy, w, gate, up], a, outs, k) => {
    const [dh] = BACKWARD_KERNELS['linear_grad_input']!([dy!, w!], { transposed: a['transposed'] === true }, [outs[0]!], k);
    return siluMulBackward(asFloats(gate!), asFloats(up!), dh as ReturnType<typeof asFloats>);
  },

  gate_up_silu_mul: ([x, wg, wu], a) => {
    const t = a['transposed'] === true;
    const gate = linearForward(asFloats(x!), asFloats(wg!), undefined, linearShape(x!, wg!, t));
    const up = linearForward(asFloats(x!), asFloats(wu!), undefined, linearShape(x!, wu!, t));
    return [gate, up, siluMulForward(gate, up)];
  },

  silu_mul_linear: ([gate, w, up, r], a) => {
    const h = siluMulForward(asFloats(gate!), asFloats(up!));
    const y = linearForward(h, asFloats(w!), undefined, linearShape({ data: h, shape: gate!.shape }, w!, a['transposed'] === true));
    if (r) {
      const rr = asFloats(r);
      for (let j = 0; j < y.length; j++) y[j] = y[j]! + rr[j]!;
    }
    return [y];
  },

  // Each term as linear_grad_input gives it, then the sum in input order as add_grad makes it.
  linear_grad_input_sum: (xs, a, outs, k) => {
    const T = a['terms'] as number;
    const tr = (a['transposed'] as number[] | undefined) ?? [];
    const parts = [];
    for (let t = 0; t < T; t++) parts.push(...BACKWARD_KERNELS['linear_grad_input']!([xs[2 * t]!, xs[2 * t + 1]!], { transposed: tr[t] === 1 }, outs, k));
    const rest = xs.slice(2 * T).map((r) => ({ data: asFloats(r), shape: r.shape }));
    return BACKWARD_KERNELS['add_grad']!([...parts.map((d) => ({ data: d, shape: outs[0]! })), ...rest], {}, outs, k);
  },

  linear_fused: ([x, w, ...extras], a) => {
    let i = 0;
    const bias = a['bias'] === true ? extras[i++] : undefined;
    const y = linearForward(asFloats(x!), asFloats(w!), bias && asFloats(bias), linearShape(x!, w!, a['transposed'] === true));
    if (typeof a['lora_scale'] === 'number') {
      const u = extras[i++]!;
      const B = extras[i++]!;
      const d = linearForward(asFloats(u), asFloats(B), undefined, linearShape(u, B, false));
      // AdaLoRA's scale, computed as rank_scale computes it.
      const s = a['lora_ranknum'] === true ? a['lora_scale'] / (asFloats(extras[i++]!)[0]! + (a['lora_eps'] as number)) : a['lora_scale'];
      for (let j = 0; j < y.length; j++) y[j] = y[j]! + s * d[j]!;
    }
    if (a['residual'] === true) {
      const r = asFloats(extras[i++]!);
      for (let j = 0; j < y.length; j++) y[j] = y[j]! + r[j]!;
    }
    return [y];
  },
};
