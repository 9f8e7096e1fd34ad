// AdaLoRA's orthogonal regulariser, as PEFT adds it to the loss (peft-methods.md §2.4):
//   R = (1/N) Σ_k ‖C_k − I‖_F   over every lora_A and lora_B matrix of the adapter (N of them),
//   C = A Aᵀ (r×r) for A [r,in],  C = Bᵀ B (r×r) for B [out,r].
// The norm is NOT squared (PEFT and the authors' code; the paper writes it squared); the loss term
// is orth_reg_weight · R. Gradient of one term f = ‖D‖_F, D = C − I (symmetric):
//   ∂f/∂A = 2 D A / f,   ∂f/∂B = 2 B D / f   (0 where f = 0).
// Backward keeps the matrices only.

import { expectLength, like, type Floats } from './floats.js';

export interface OrthMatrix {
  w: Floats;
  rows: number;
  cols: number;
  /** 'A': lora_A [r,in], C = w wᵀ; 'B': lora_B [out,r], C = wᵀ w. */
  kind: 'A' | 'B';
}

/** D = C − I, r×r, in float64. */
function gramMinusIdentity(m: OrthMatrix): { D: Float64Array; r: number } {
  expectLength('orth matrix', m.w, m.rows * m.cols);
  const r = m.kind === 'A' ? m.rows : m.cols;
  const n = m.kind === 'A' ? m.cols : m.rows;
  // Element (i, j) of the r-side index i and the long-side index j.
  const at = m.kind === 'A' ? (i: number, j: number) => m.w[i * m.cols + j]! : (i: number, j: number) => m.w[j * m.cols + i]!;
  const D = new Float64Array(r * r);
  for (let i = 0; i < r; i++) {
    for (let k = 0; k < r; k++) {
      let acc = 0;
      for (let j = 0; j < n; j++) acc += at(i, j) * at(k, j);
      D[i * r + k] = acc - (i === k ? 1 : 0);
    }
  }
  return { D, r };
}

function frobenius(D: Float64Array): number {
  let ss = 0;
  for (let i = 0; i < D.length; i++) ss += D[i]! * D[i]!;
  return Math.sqrt(ss);
}

export function orthRegForward(mats: readonly OrthMatrix[]): number {
  if (mats.length === 0) return 0;
  let sum = 0;
  for (const m of mats) sum += frobenius(gramMinusIdentity(m).D);
  return sum / mats.length;
}

/** Gradients of dR · R toward each matrix, in the matrix's own layout. */
export function orthRegBackward(mats: readonly OrthMatrix[], dR = 1): Floats[] {
  return mats.map((m) => {
    const { D, r } = gramMinusIdentity(m);
    const f = frobenius(D);
    const grad = like(m.w, m.w.length);
    if (f === 0) return grad;
    const c = (dR / mats.length) * (2 / f);
    if (m.kind === 'A') {
      // (D A)[i, j] = Σ_k D[i,k] A[k,j]
      for (let i = 0; i < m.rows; i++) {
        for (let j = 0; j < m.cols; j++) {
          let acc = 0;
          for (let k = 0; k < r; k++) acc += D[i * r + k]! * m.w[k * m.cols + j]!;
          grad[i * m.cols + j] = c * acc;
        }
      }
    } else {
      // (B D)[j, i] = Σ_k B[j,k] D[k,i]
      for (let j = 0; j < m.rows; j++) {
        for (let i = 0; i < m.cols; i++) {
          let acc = 0;
          for (let k = 0; k < r; k++) acc += m.w[j * m.cols + k]! * D[k * r + i]!;
          grad[j * m.cols + i] = c * acc;
        }
      }
    }
    return grad;
  });
}
