// The concrete sizes one attention op runs at, and the launch geometry its kernels share. Kept
// apart from the WGSL so the lowering, the tests and the kernels agree on one derivation.

import type { KernelBinding } from "../../kernel.js";

export interface AttentionShape {
  B: number;
  /** Query positions. */
  T: number;
  /** Sequence keys (the prefix comes on top). */
  S: number;
  Hq: number;
  Hkv: number;
  hd: number;
  /** Prefix keys/values; 0 for none. */
  P: number;
  /** The prefix is [B,P,Hkv,hd] (true) or shared by the batch as [P,Hkv,hd] (false). */
  prefixBatched: boolean;
  causal: boolean;
  scale: number;
}

/** Sentinel below any score: exp(NEG − finite) is 0 and a row max of NEG means "nothing visible". */
export const NEG = "-3.0e38f";

/**
 * WGSL binding HDN, the head-dimension trip count of a kernel's loops over d. Normally HD hidden
 * behind a runtime test the shader compiler cannot fold (buffers are never empty): the loops stay
 * loops, which keeps compile time flat in hd. With `unroll` it is the constant HD, so the loops
 * unroll and per-key rows stay in registers: at hd ≤ 8 the dk/dv kernel asks for it (1.8x faster
 * on llvmpipe for about 2 s more compile time, once per shape), and on CPU adapters the query-row
 * kernels do too (see queryRowTuning).
 */
export function headDimLoop(anyBuffer: string, unroll: boolean): string {
  return unroll ? "let HDN = HD;" : `let HDN = select(HD, 0u, arrayLength(&${anyBuffer}) == 0u);`;
}

export function storage(binding: number, name: string, access: "read" | "read_write"): KernelBinding {
  return { binding, name, access, type: "array<f32>", elem: "f32" };
}

export function checkShape(s: AttentionShape): void {
  const dims = [s.B, s.T, s.S, s.Hq, s.Hkv, s.hd];
  if (dims.some((d) => !Number.isInteger(d) || d <= 0) || !Number.isInteger(s.P) || s.P < 0)
    throw new Error(`attention: bad sizes ${JSON.stringify(s)}`);
  if (s.Hq % s.Hkv !== 0) throw new Error(`attention: Hq=${s.Hq} is not a multiple of Hkv=${s.Hkv}`);
  if (!Number.isFinite(s.scale)) throw new Error(`attention: scale ${s.scale} is not finite`);
}

/** Linear workgroup index from a grid spread over x and y (see splitGrid). */
export function linearGroup(gx: number): string {
  return `let wg = wid.x + wid.y * ${gx}u;`;
}

export function shapeLabel(s: AttentionShape): string {
  const pre = s.P ? `_p${s.P}${s.prefixBatched ? "b" : ""}` : "";
  return `b${s.B}t${s.T}s${s.S}h${s.Hq}kv${s.Hkv}d${s.hd}${pre}${s.causal ? "_causal" : ""}`;
}
