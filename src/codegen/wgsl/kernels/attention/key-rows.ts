// The backward kernels that own key rows: dk/dv for the sequence keys, or dprefix_k/dprefix_v.
// One invocation owns one key of one kv head and sums, in registers, the contributions of every
// query row that sees it: the G query heads grouped on that kv head and, for a prefix shared by
// the batch, every batch row too. So no two invocations write the same element and no atomics are
// needed. Query rows (q, dout and the row's lse and delta from the stats kernel) are staged in
// workgroup memory in blocks of R and serve the workgroup's KT keys at once. The probabilities are
// recomputed as exp(q·k·scale − lse).

import type { DeviceCaps } from "../../caps.js";
import type { KernelBinding, KernelSpec } from "../../kernel.js";
import { f32, renderModule, splitGrid } from "../../render.js";
import { checkShape, linearGroup, shapeLabel, storage, tileBudgetBytes, type AttentionShape } from "./shape.js";

export interface KeyRowNames {
  q: string;
  dout: string;
  stats: string;
  /** The keys and values this kernel differentiates toward (sequence or prefix). */
  k: string;
  v: string;
  dk: string;
  dv: string;
}

export interface KeyRowGeometry {
  /** Keys per workgroup (= threads). */
  KT: number;
  /** Query rows per staged block. */
  R: number;
  groups: number;
}

export function keyRowGeometry(s: AttentionShape, which: "seq" | "prefix", caps: DeviceCaps): KeyRowGeometry {
  const keys = which === "seq" ? s.S : s.P;
  const KT = Math.max(1, Math.min(64, keys));
  const R = Math.max(1, Math.min(32, s.T * (s.Hq / s.Hkv), Math.floor(tileBudgetBytes(caps) / (2 * 4 * s.hd + 8))));
  // A shared prefix has one owner for all batch rows.
  const owners = which === "prefix" && !s.prefixBatched ? 1 : s.B;
  return { KT, R, groups: owners * s.Hkv * Math.ceil(keys / KT) };
}

export function keyRowKernel(s: AttentionShape, which: "seq" | "prefix", names: KeyRowNames, caps: DeviceCaps): KernelSpec {
  checkShape(s);
  if (which === "prefix" && !s.P) throw new Error("attention: prefix gradients without a prefix");
  const G = s.Hq / s.Hkv;
  const { KT, R, groups } = keyRowGeometry(s, which, caps);
  const keys = which === "seq" ? s.S : s.P;
  const bindings: KernelBinding[] = [];
  const bind = (name: string, access: "read" | "read_write"): void => void bindings.push(storage(bindings.length, name, access));
  bind(names.q, "read");
  bind(names.dout, "read");
  bind(names.stats, "read");
  bind(names.k, "read");
  bind(names.v, "read");
  bind(names.dk, "read_write");
  bind(names.dv, "read_write");

  const shared = which === "prefix" && !s.prefixBatched;
  // Element offset of key `kk` (this kernel's own numbering) for owner batch row `b`.
  const keyOff = which === "seq" ? `((b * S + kk) * HKV + g) * HD` : `b * PBS + (kk * HKV + g) * HD`;
  // Sequence keys see queries t ≥ s − (S − T); prefix keys see every query.
  const causalSeq = s.causal && which === "seq";
  const rowStart = causalSeq ? `u32(max(i32(tile * KT) - ${s.S - s.T}, 0)) * G` : "0u";
  const visible = causalSeq ? `i32(kk) <= i32(t) + ${s.S - s.T}` : "true";
  const [gx, gy] = splitGrid(groups, caps);

  const body = `
${linearGroup(gx)}
if (wg >= GROUPS) { return; }
let tile = wg % NTILES;
let bg = wg / NTILES;
let g = bg % HKV;
let b = bg / HKV;
let kk = tile * KT + lid;
let inRange = kk < KEYS;
var kr: array<f32, HD>;
var vr: array<f32, HD>;
var dk: array<f32, HD>;
var dv: array<f32, HD>;
if (inRange) {
  let o = ${keyOff};
  for (var d = 0u; d < HD; d++) {
    kr[d] = ${names.k}[o + d];
    vr[d] = ${names.v}[o + d];
  }
}
let r0 = ${rowStart};
for (var qb = ${shared ? "0u" : "b"}; qb < ${shared ? "B" : "b + 1u"}; qb++) {
  for (var rb = r0; rb < ROWS; rb += R) {
    workgroupBarrier();
    for (var e = lid; e < R * HD; e += KT) {
      let r = rb + e / HD;
      if (r < ROWS) {
        let t = r / G;
        let h = g * G + r % G;
        let o = ((qb * T + t) * HQ + h) * HD + e % HD;
        qs[e] = ${names.q}[o];
        ds[e] = ${names.dout}[o];
      }
    }
    for (var e = lid; e < R; e += KT) {
      let r = rb + e;
      if (r < ROWS) {
        let row = (qb * HQ + g * G + r % G) * T + r / G;
        lses[e] = ${names.stats}[row];
        deltas[e] = ${names.stats}[NR + row];
      }
    }
    workgroupBarrier();
    if (inRange) {
      let n = min(R, ROWS - rb);
      for (var i = 0u; i < n; i++) {
        let t = (rb + i) / G;
        if (${visible}) {
          var dot = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < HD; d++) {
            dot += qs[i * HD + d] * kr[d];
            dp += ds[i * HD + d] * vr[d];
          }
          let p = exp(dot * SCALE - lses[i]);
          let dsc = p * (dp - deltas[i]) * SCALE;
          for (var d = 0u; d < HD; d++) {
            dv[d] += p * ds[i * HD + d];
            dk[d] += dsc * qs[i * HD + d];
          }
        }
      }
    }
  }
}
if (inRange) {
  let o = ${keyOff};
  for (var d = 0u; d < HD; d++) {
    ${names.dk}[o + d] = dk[d];
    ${names.dv}[o + d] = dv[d];
  }
}`;

  const wgsl = renderModule({
    bindings,
    consts: {
      B: s.B,
      T: s.T,
      S: s.S,
      HQ: s.Hq,
      HKV: s.Hkv,
      HD: s.hd,
      G,
      KEYS: keys,
      KT,
      R,
      ROWS: s.T * G,
      NTILES: Math.ceil(keys / KT),
      GROUPS: groups,
      NR: s.B * s.Hq * s.T,
      PBS: s.prefixBatched ? s.P * s.Hkv * s.hd : 0,
      SCALE: f32(s.scale),
    },
    workgroupVars: [`qs: array<f32, ${R * s.hd}>`, `ds: array<f32, ${R * s.hd}>`, `lses: array<f32, ${R}>`, `deltas: array<f32, ${R}>`],
    entryPoint: "main",
    workgroupSize: [KT, 1, 1],
    params: ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_index) lid: u32"],
    body,
  });
  return {
    label: `attention_d${which === "seq" ? "kv" : "prefix"}_${shapeLabel(s)}`,
    wgsl,
    entryPoint: "main",
    workgroupSize: [KT, 1, 1],
    dispatch: [gx, gy, 1],
    bindings,
    flops: 8 * s.B * s.Hq * s.T * keys * s.hd,
  };
}
