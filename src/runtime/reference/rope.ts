// Rotary position embedding on x [B,T,H,hd] with positions [T] (shared by the batch) or [B,T].
// The first `rotaryDim` channels of each head are rotated in pairs, the rest pass through:
//   mode "half" (llama, rotate_half):   pairs (i, i + rd/2), i < rd/2
//   mode "interleaved" (chatglm2):      pairs (2i, 2i + 1),  i < rd/2
// Pair i turns by angle pos · inv_freq_i, inv_freq_i = theta^(−2i/rd):
//   out_first = x_first·cos − x_second·sin,  out_second = x_second·cos + x_first·sin.
// chatglm2 uses rd = hd/2, interleaved, theta 10000 (peft-methods.md §13.3).
// Backward keeps only the positions: the gradient is the same rotation by −angle.

import { expectLength, like, type Floats } from './floats.js';

export interface RopeSpec {
  B: number;
  T: number;
  H: number;
  hd: number;
  mode: 'half' | 'interleaved';
  /** Rotated channels per head (even, ≤ hd); defaults to hd. */
  rotaryDim?: number;
  theta: number;
}

function rotate<T extends Floats>(x: T, positions: Int32Array, s: RopeSpec, sign: 1 | -1): T {
  const { B, T, H, hd } = s;
  const rd = s.rotaryDim ?? hd;
  if (rd % 2 !== 0 || rd > hd || rd <= 0) throw new Error(`reference: rope rotary dim ${rd} invalid for head dim ${hd}`);
  expectLength('rope x', x, B * T * H * hd);
  if (positions.length !== T && positions.length !== B * T) {
    throw new Error(`reference: rope positions have ${positions.length} elements, expected ${T} or ${B * T}`);
  }
  const perBatch = positions.length === B * T;
  const half = rd / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.pow(s.theta, (-2 * i) / rd);
  const out = like(x, x.length);
  out.set(x);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const pos = positions[perBatch ? b * T + t : t]!;
      for (let i = 0; i < half; i++) {
        const angle = pos * invFreq[i]!;
        const cos = Math.cos(angle);
        const sin = sign * Math.sin(angle);
        const first = s.mode === 'half' ? i : 2 * i;
        const second = s.mode === 'half' ? i + half : 2 * i + 1;
        for (let h = 0; h < H; h++) {
          const base = ((b * T + t) * H + h) * hd;
          const x1 = x[base + first]!;
          const x2 = x[base + second]!;
          out[base + first] = x1 * cos - x2 * sin;
          out[base + second] = x2 * cos + x1 * sin;
        }
      }
    }
  }
  return out;
}

export function ropeForward<T extends Floats>(x: T, positions: Int32Array, spec: RopeSpec): T {
  return rotate(x, positions, spec, 1);
}

export function ropeBackward<T extends Floats>(dy: T, positions: Int32Array, spec: RopeSpec): T {
  return rotate(dy, positions, spec, -1);
}
