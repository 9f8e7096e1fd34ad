// Optimizer IR ops mapped onto the reference optimizers (optim.ts) and AdaLoRA's regulariser
// (adalora.ts). The reference functions update in place; here every input is copied first, since
// IR values are immutable and the updated tensors are new outputs.

import type { Attrs } from '../../../ir/opdef.js';
import { orthRegBackward, orthRegForward, type OrthMatrix } from '../adalora.js';
import { adamStep, clipGradNorm, sgdStep } from '../optim.js';
import type { Kernel } from './forward.js';
import { asFloats, zeros, type Tensor } from './tensor.js';

const num = (a: Attrs, key: string): number => a[key] as number;

const copyOf = (t: Tensor) => asFloats(t).slice();

const scalarOf = (t: Tensor): number => asFloats(t)[0]!;

function orthMats(ms: Tensor[], a: Attrs): OrthMatrix[] {
  const kinds = a['kinds'] as number[];
  return ms.map((m, i) => ({ w: asFloats(m), rows: m.shape[0]!, cols: m.shape[1]!, kind: kinds[i] === 0 ? 'A' : 'B' }));
}

const adam =
  (decoupled: boolean): Kernel =>
  ([p, g, m, v, lr, step], a) => {
    const param = copyOf(p!);
    const state = { step: scalarOf(step!) - 1, m: copyOf(m!), v: copyOf(v!) };
    adamStep(param, asFloats(g!), state, {
      lr: scalarOf(lr!),
      beta1: num(a, 'beta1'),
      beta2: num(a, 'beta2'),
      eps: num(a, 'eps'),
      weightDecay: num(a, 'weight_decay'),
      decoupled,
    });
    return [param, state.m, state.v];
  };

export const OPTIMIZER_KERNELS: Readonly<Record<string, Kernel>> = {
  clip_grad_norm: (gs, a, _, k) => {
    const copies = gs.map(copyOf);
    const total = zeros(k.f64, 1);
    total[0] = clipGradNorm(copies, num(a, 'max_norm'));
    return [...copies, total];
  },

  sgd_update: ([p, g, lr, step, buf], a) => {
    const param = copyOf(p!);
    // torch starts the momentum buffer from the first step's gradient.
    const state = scalarOf(step!) <= 1 || !buf ? {} : { momentumBuffer: copyOf(buf) };
    const o = {
      lr: scalarOf(lr!),
      momentum: num(a, 'momentum'),
      dampening: num(a, 'dampening'),
      weightDecay: num(a, 'weight_decay'),
      nesterov: a['nesterov'] === true,
    };
    sgdStep(param, asFloats(g!), state, o);
    return buf ? [param, (state as { momentumBuffer?: typeof param }).momentumBuffer!] : [param];
  },

  adam_update: adam(false),
  adamw_update: adam(true),

  adalora_orth_reg: (ms, a, _, k) => {
    const r = zeros(k.f64, 1);
    r[0] = orthRegForward(orthMats(ms, a));
    return [r];
  },

  adalora_orth_reg_backward: ([dr, ...ms], a) => orthRegBackward(orthMats(ms, a), scalarOf(dr!)),
};
