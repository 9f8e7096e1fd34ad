// The decode step's kernels. The cache write copies one position's H·hd values into row `pos`
// of the cache, in place. The one-query attention gives each query head a workgroup: its threads
// walk the visible keys ([prefix | cache rows 0..pos]) in strides, writing the scaled scores to a
// scratch row and keeping a running max; a workgroup max, then exp and a workgroup sum; then each
// thread owns channels of the output and sums p·v over the keys. The key count is read from the
// position tensor at run time, so one pipeline serves every position, and no atomics are needed.

import type { DeviceCaps } from "../../caps.js";
import type { KernelSpec } from "../../kernel.js";
import { f32 } from "../../render.js";
import { input, kernel, mapKernel, output, RED_VAR, scratch, treeTop, wgSum, type BindingDecl } from "../common.js";

/** Below any score, as the full attention kernels start their running max. */
const NEG = "-3.0e38f";

export interface CacheWriteShape {
  /** Cache rows. */
  L: number;
  H: number;
  hd: number;
}

export function cacheWriteKernel(s: CacheWriteShape, caps: DeviceCaps): KernelSpec {
  const n = s.H * s.hd;
  return mapKernel({
    label: `kv_cache_write_l${s.L}h${s.H}d${s.hd}`,
    caps,
    n,
    // out0 is the cache itself (the op's output aliases input 0); in0 is not bound.
    bindings: [input(1, "f32"), input(2, "i32"), output(0, "f32")],
    consts: { L: s.L },
    body: `let p = in2[0];
if (p < 0 || u32(p) >= L) { return; }
out0[u32(p) * N + i] = in1[i];`,
    flops: 0,
  });
}

export interface DecodeAttentionShape {
  Hq: number;
  Hkv: number;
  hd: number;
  /** Cache rows. */
  L: number;
  /** Prefix keys/values; 0 for none. */
  P: number;
  scale: number;
}

const DECODE_WG = 64;

/** Scratch bytes: one score per (query head, key). */
export function decodeAttentionScratch(s: DecodeAttentionShape): number {
  return 4 * s.Hq * (s.P + s.L);
}

export function decodeAttentionKernel(s: DecodeAttentionShape, caps: DeviceCaps): KernelSpec {
  if (s.Hq % s.Hkv !== 0) throw new Error(`attention_decode: Hq=${s.Hq} is not a multiple of Hkv=${s.Hkv}`);
  const bindings: BindingDecl[] = [input(0, "f32"), input(1, "f32"), input(2, "f32"), input(3, "i32")];
  if (s.P) bindings.push(input(4, "f32"), input(5, "f32"));
  bindings.push(output(0, "f32"), scratch(0));
  // One cached value of key j (prefix first) at channel d. select() evaluates both sides, so the
  // index it does not pick is clamped into range.
  const kv = (cache: string, prefix: string, d: string): string =>
    s.P
      ? `select(${cache}[((max(j, P) - P) * HKV + g) * HD + ${d}], ${prefix}[(min(j, P - 1u) * HKV + g) * HD + ${d}], j < P)`
      : `${cache}[(j * HKV + g) * HD + ${d}]`;
  const body = `let h = group;
let g = h / G;
// The runtime keeps pos in range; clamping keeps a bad one from reading past the cache.
let J = P + u32(clamp(in3[0], 0, i32(L) - 1)) + 1u;
let row = h * JMAX;
var mx = ${NEG};
for (var j = lid; j < J; j += WG) {
  var dot = 0.0;
  for (var d = 0u; d < HD; d++) {
    dot += in0[h * HD + d] * ${kv("in1", "in4", "d")};
  }
  let sc = dot * SCALE;
  tmp0[row + j] = sc;
  mx = max(mx, sc);
}
let m = wg_max(mx, lid);
var l = 0.0;
for (var j = lid; j < J; j += WG) {
  let e = exp(tmp0[row + j] - m);
  tmp0[row + j] = e;
  l += e;
}
let total = wg_sum(l, lid);
storageBarrier();
for (var d = lid; d < HD; d += WG) {
  var acc = 0.0;
  for (var j = 0u; j < J; j++) {
    acc += tmp0[row + j] * ${kv("in2", "in5", "d")};
  }
  out0[h * HD + d] = acc / total;
}`;
  const WG_MAX = `
fn wg_max(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${treeTop("WG / 2u", "out0")}; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;
  return kernel({
    label: `attention_decode_h${s.Hq}kv${s.Hkv}d${s.hd}_l${s.L}${s.P ? `_p${s.P}` : ""}`,
    caps,
    bindings,
    workgroupSize: DECODE_WG,
    groups: s.Hq,
    consts: { HQ: s.Hq, HKV: s.Hkv, HD: s.hd, G: s.Hq / s.Hkv, L: s.L, P: s.P, JMAX: s.P + s.L, SCALE: f32(s.scale) },
    workgroupVars: [RED_VAR],
    helpers: `${wgSum("out0")}\n${WG_MAX}`,
    body,
    flops: 4 * s.Hq * (s.P + s.L) * s.hd,
  });
}
