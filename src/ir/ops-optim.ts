/**
 * Optimizer and training-step ops: gradient clipping, parameter updates with PyTorch's semantics
 * (torch.optim.SGD / Adam / AdamW, clip_grad_norm_), and AdaLoRA's orthogonal regulariser.
 * Optimizer state is explicit: graph inputs that the step reads and outputs that replace them. The learning rate and the 1-based step number
 * t are f32 scalars fed each step (the schedule lives in the trainer).
 */
import { defineOp, type OpDef } from "./opdef.js";
import { f, first, rank } from "./ops-util.js";
import { formatType, shapeEq, type TensorType } from "./shape.js";

const scalar = (t: TensorType, what: string): string | undefined => first(f(t, what), rank(t, 0, what));

const same = (a: TensorType, b: TensorType, what: string): string | undefined =>
  shapeEq(a.shape, b.shape) ? undefined : `${what} ${formatType(b)} does not match param ${formatType(a)}`;

const adam = (doc: string): OpDef =>
  defineOp({
    doc,
    inputs: ["param", "grad", "m", "v", "lr", "step"],
    attrs: { beta1: { kind: "float" }, beta2: { kind: "float" }, eps: { kind: "float" }, weight_decay: { kind: "float" } },
    infer: ([p, g, m, v, lr, step]) => {
      const bad = first(f(p!, "param"), same(p!, g!, "grad"), same(p!, m!, "m"), same(p!, v!, "v"), scalar(lr!, "lr"), scalar(step!, "step"));
      return bad ?? [p!, m!, v!].map((t) => ({ dtype: "f32" as const, shape: t.shape }));
    },
  });

/** kinds: 0 for a lora_A [r,in] (C = A·Aᵀ), 1 for a lora_B [out,r] (C = Bᵀ·B). */
const orthKinds = (mats: TensorType[], kinds: number[]): string | undefined => {
  if (kinds.length !== mats.length) return `kinds lists ${kinds.length} entries for ${mats.length} matrices`;
  for (const [i, m] of mats.entries()) {
    const bad = f(m, `mats[${i}]`) ?? rank(m, 2, `mats[${i}]`);
    if (bad) return bad;
    if (kinds[i] !== 0 && kinds[i] !== 1) return `kinds[${i}] must be 0 (A) or 1 (B)`;
  }
  return undefined;
};

export const OPTIMIZER_OPS: Readonly<Record<string, OpDef>> = {
  clip_grad_norm: defineOp({
    doc: "torch.nn.utils.clip_grad_norm_: every gradient times min(1, max_norm/(‖all‖₂ + 1e-6)); outputs the clipped gradients, then the total norm before clipping",
    inputs: ["grads..."],
    attrs: { max_norm: { kind: "float" } },
    infer: (gs, a) => {
      if (!(a.max_norm > 0)) return `max_norm must be positive, got ${a.max_norm}`;
      for (const [i, g] of gs.entries()) {
        const bad = f(g, `grads[${i}]`);
        if (bad) return bad;
      }
      return [...gs.map((g) => ({ dtype: "f32" as const, shape: g.shape })), { dtype: "f32", shape: [] }];
    },
  }),

  sgd_update: defineOp({
    doc: "torch.optim.SGD: d = g + wd·p; with momentum buf = d at step 1, else momentum·buf + (1 − dampening)·d; d = nesterov ? d + momentum·buf : buf; p − lr·d. Outputs p' (and buf' with momentum)",
    inputs: ["param", "grad", "lr", "step", "momentum_buffer?"],
    attrs: {
      momentum: { kind: "float" },
      dampening: { kind: "float" },
      weight_decay: { kind: "float" },
      nesterov: { kind: "bool" },
    },
    infer: ([p, g, lr, step, buf], a) => {
      const bad = first(f(p!, "param"), same(p!, g!, "grad"), scalar(lr!, "lr"), scalar(step!, "step"), buf ? same(p!, buf, "momentum_buffer") : undefined);
      if (bad) return bad;
      if ((a.momentum !== 0) !== !!buf) return "a momentum buffer goes with momentum ≠ 0, and only then";
      return [p!, ...(buf ? [buf] : [])].map((t) => ({ dtype: "f32" as const, shape: t.shape }));
    },
  }),

  adam_update: adam("torch.optim.Adam at step t: g' = g + wd·p (L2), m, v moments, bias-corrected, eps outside the sqrt; outputs p', m', v'"),
  adamw_update: adam("torch.optim.AdamW at step t: p·(1 − lr·wd) first (decoupled), then Adam without L2; outputs p', m', v'"),

  adalora_orth_reg: defineOp({
    doc: "AdaLoRA's R = mean over matrices of ‖C − I‖_F (not squared), C = A·Aᵀ for kind 0, Bᵀ·B for kind 1; f32 scalar",
    inputs: ["mats..."],
    attrs: { kinds: { kind: "ints" } },
    infer: (ms, a) => orthKinds(ms, a.kinds) ?? [{ dtype: "f32", shape: [] }],
  }),

  adalora_orth_reg_backward: defineOp({
    doc: "dR · ∂R/∂matrix for every matrix of adalora_orth_reg, in order",
    inputs: ["dr", "mats..."],
    attrs: { kinds: { kind: "ints" } },
    infer: ([dr, ...ms], a) =>
      scalar(dr!, "dr") ?? orthKinds(ms, a.kinds) ?? ms.map((m) => ({ dtype: "f32" as const, shape: m.shape })),
  }),
};
