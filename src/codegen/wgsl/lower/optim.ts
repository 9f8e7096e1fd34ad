/** Lowerings of the optim family (see types.ts for the contract). */
import { adamPrologueKernel, adamUpdateKernel, clipGradNormKernels, orthRegBackwardKernels, orthRegKernels, sgdUpdateKernel, type OrthMatrixShape } from "../kernels/optim/index.js";
import { registerLowerings } from "./registry.js";
import { numel, type LowerContext, type Lowering } from "./types.js";

const num = (ctx: LowerContext, key: string): number => ctx.attrs[key] as number;

const adam =
  (decoupled: boolean): Lowering =>
  (ctx) => {
    const h = { beta1: num(ctx, "beta1"), beta2: num(ctx, "beta2"), eps: num(ctx, "eps"), weightDecay: num(ctx, "weight_decay"), decoupled };
    return { kernels: [adamPrologueKernel(h), adamUpdateKernel(numel(ctx.inputs[0]!.shape), h, ctx.caps)], scratch: [16] };
  };

const orthShapes = (ctx: LowerContext, mats: LowerContext["inputs"]): OrthMatrixShape[] => {
  const kinds = ctx.attrs["kinds"] as number[];
  return mats.map((m, i) => ({ rows: m.shape[0]!, cols: m.shape[1]!, kind: kinds[i] === 0 ? 0 : 1 }));
};

const lowerings: Record<string, Lowering> = {
  clip_grad_norm: (ctx) => {
    const { kernels, scratchBytes } = clipGradNormKernels(ctx.inputs.map((t) => numel(t.shape)), num(ctx, "max_norm"), ctx.caps);
    return { kernels, scratch: scratchBytes };
  },

  sgd_update: (ctx) => ({
    kernels: [
      sgdUpdateKernel(
        numel(ctx.inputs[0]!.shape),
        { momentum: num(ctx, "momentum"), dampening: num(ctx, "dampening"), weightDecay: num(ctx, "weight_decay"), nesterov: ctx.attrs["nesterov"] === true },
        ctx.caps,
      ),
    ],
  }),

  adam_update: adam(false),
  adamw_update: adam(true),

  adalora_orth_reg: (ctx) => {
    const { kernels, scratchBytes } = orthRegKernels(orthShapes(ctx, ctx.inputs));
    return { kernels, scratch: scratchBytes };
  },

  adalora_orth_reg_backward: (ctx) => {
    const { kernels, scratchBytes } = orthRegBackwardKernels(orthShapes(ctx, ctx.inputs.slice(1)), ctx.caps);
    return { kernels, scratch: scratchBytes };
  },
};

registerLowerings(lowerings);
