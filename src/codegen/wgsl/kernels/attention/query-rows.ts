// The kernels that own query rows: the forward pass, the backward's row statistics (log-sum-exp
// and delta = dout·out) and dq. One invocation owns one (query position, query head) row and keeps
// its q and accumulator in registers; a workgroup holds the query heads of one kv head for a run
// of positions, so every K/V block it stages in workgroup memory serves G = Hq/Hkv heads at once.
// Keys are walked once, in blocks of BK, prefix first ([prefix | sequence], as the reference
// orders them); the forward keeps a running max and sum (online softmax), so memory stays
// O(T·hd) per head. With `causal` the key loop of a workgroup stops at the last key its last
// query sees; each row still masks its own keys (query t sees sequence key s iff s ≤ t + S − T).

import type { DeviceCaps } from "../../caps.js";
import type { KernelBinding, KernelSpec } from "../../kernel.js";
import { f32, renderModule, splitGrid } from "../../render.js";
import { checkShape, linearGroup, NEG, shapeLabel, storage, tileBudgetBytes, type AttentionShape } from "./shape.js";

export type QueryRowMode = "forward" | "stats" | "dq";

/** Binding names; absent ones are not bound in that mode. */
export interface QueryRowNames {
  q: string;
  k: string;
  v?: string;
  pk?: string;
  pv?: string;
  /** forward: the output; stats: the forward output read for delta. */
  out?: string;
  dout?: string;
  /** [lse (B·Hq·T) | delta (B·Hq·T)], rows ordered (b, h, t). */
  stats?: string;
  dq?: string;
}

export interface QueryRowGeometry {
  /** Query positions per workgroup. */
  TQ: number;
  /** Keys per staged block. */
  BK: number;
  threads: number;
  groups: number;
}

export function queryRowGeometry(s: AttentionShape, caps: DeviceCaps): QueryRowGeometry {
  const G = s.Hq / s.Hkv;
  const TQ = Math.max(1, Math.min(Math.floor(64 / G), s.T));
  const J = s.P + s.S;
  const BK = Math.max(1, Math.min(16, J, Math.floor(tileBudgetBytes(caps) / (2 * 4 * s.hd))));
  return { TQ, BK, threads: TQ * G, groups: s.B * s.Hkv * Math.ceil(s.T / TQ) };
}

export function queryRowKernel(s: AttentionShape, mode: QueryRowMode, names: QueryRowNames, caps: DeviceCaps): KernelSpec {
  checkShape(s);
  const G = s.Hq / s.Hkv;
  const { TQ, BK, threads, groups } = queryRowGeometry(s, caps);
  if (threads > caps.maxInvocationsPerWorkgroup) throw new Error(`attention: ${G} heads per kv head exceed one workgroup`);
  const needV = mode !== "stats";
  const need = (n: string | undefined, what: string): string => {
    if (!n) throw new Error(`attention ${mode}: no binding name for ${what}`);
    return n;
  };
  const q = need(names.q, "q");
  const k = need(names.k, "k");
  const v = needV ? need(names.v, "v") : "";
  const pk = s.P ? need(names.pk, "prefix_k") : "";
  const pv = s.P && needV ? need(names.pv, "prefix_v") : "";

  const bindings: KernelBinding[] = [];
  const bind = (name: string, access: "read" | "read_write"): void => void bindings.push(storage(bindings.length, name, access));
  bind(q, "read");
  bind(k, "read");
  if (needV) bind(v, "read");
  if (s.P) {
    bind(pk, "read");
    if (needV) bind(pv, "read");
  }
  if (mode === "forward") bind(need(names.out, "out"), "read_write");
  if (mode === "stats") {
    bind(need(names.out, "out"), "read");
    bind(need(names.dout, "dout"), "read");
    bind(need(names.stats, "stats"), "read_write");
  }
  if (mode === "dq") {
    bind(need(names.dout, "dout"), "read");
    bind(need(names.stats, "stats"), "read");
    bind(need(names.dq, "dq"), "read_write");
  }

  const [gx, gy] = splitGrid(groups, caps);
  const nTiles = Math.ceil(s.T / TQ);
  const rowOut = `((b * T + t) * HQ + h) * HD`;
  const stage = `
    for (var e = lid; e < BK * HD; e += THREADS) {
      let jj = j0 + e / HD;
      let d = e % HD;
      var kx = 0.0;${needV ? "\n      var vx = 0.0;" : ""}
      ${s.P ? `if (jj < P) {
        let o = b * PBS + (jj * HKV + g) * HD + d;
        kx = ${pk}[o];${needV ? `\n        vx = ${pv}[o];` : ""}
      } else ` : ""}if (jj < J) {
        let o = ((b * S + jj - P) * HKV + g) * HD + d;
        kx = ${k}[o];${needV ? `\n        vx = ${v}[o];` : ""}
      }
      kt[e] = kx;${needV ? "\n      vt[e] = vx;" : ""}
    }`;
  const visible = s.causal ? `(j < P || i32(j - P) <= i32(t) + ${s.S - s.T})` : "true";

  let pre = "";
  let inner = "";
  let post = "";
  if (mode === "forward" || mode === "stats") {
    pre = `var m = ${NEG};
var l = 0.0;${mode === "forward" ? "\nvar acc: array<f32, HD>;" : ""}`;
    inner = `
      var sc: array<f32, BK>;
      var mb = m;
      for (var jj = 0u; jj < n; jj++) {
        let j = j0 + jj;
        var dot = 0.0;
        for (var d = 0u; d < HD; d++) { dot += qr[d] * kt[jj * HD + d]; }
        sc[jj] = select(${NEG}, dot * SCALE, ${visible});
        mb = max(mb, sc[jj]);
      }
      if (mb > ${NEG}) {
        let corr = exp(m - mb);
        l *= corr;${mode === "forward" ? "\n        for (var d = 0u; d < HD; d++) { acc[d] *= corr; }" : ""}
        for (var jj = 0u; jj < n; jj++) {
          if (sc[jj] > ${NEG}) {
            let p = exp(sc[jj] - mb);
            l += p;${mode === "forward" ? "\n            for (var d = 0u; d < HD; d++) { acc[d] += p * vt[jj * HD + d]; }" : ""}
          }
        }
        m = mb;
      }`;
    post =
      mode === "forward"
        ? `if (inRange) {
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let o = ${rowOut};
  for (var d = 0u; d < HD; d++) { ${names.out}[o + d] = acc[d] * inv; }
}`
        : `if (inRange) {
  let o = ${rowOut};
  var delta = 0.0;
  for (var d = 0u; d < HD; d++) { delta += ${names.dout}[o + d] * ${names.out}[o + d]; }
  let row = (b * HQ + h) * T + t;
  ${names.stats}[row] = select(${NEG}, m + log(l), l > 0.0);
  ${names.stats}[NR + row] = delta;
}`;
  } else {
    pre = `let row = (b * HQ + h) * T + t;
var lse = ${NEG};
var delta = 0.0;
var dor: array<f32, HD>;
var acc: array<f32, HD>;
if (inRange) {
  lse = ${names.stats}[row];
  delta = ${names.stats}[NR + row];
  let o = ${rowOut};
  for (var d = 0u; d < HD; d++) { dor[d] = ${names.dout}[o + d]; }
}
let live = inRange && lse > ${NEG};`;
    inner = `
      if (live) {
        for (var jj = 0u; jj < n; jj++) {
          let j = j0 + jj;
          if (${visible}) {
            var dot = 0.0;
            var dp = 0.0;
            for (var d = 0u; d < HD; d++) {
              dot += qr[d] * kt[jj * HD + d];
              dp += dor[d] * vt[jj * HD + d];
            }
            let p = exp(dot * SCALE - lse);
            let ds = p * (dp - delta) * SCALE;
            for (var d = 0u; d < HD; d++) { acc[d] += ds * kt[jj * HD + d]; }
          }
        }
      }`;
    post = `if (inRange) {
  let o = ${rowOut};
  for (var d = 0u; d < HD; d++) { ${names.dq}[o + d] = acc[d]; }
}`;
  }

  // The last key any query of this workgroup sees bounds the loop, identically for all its threads.
  const keyEnd = s.causal
    ? `let tLast = min(T, tile * TQ + TQ) - 1u;
let seqEnd = u32(clamp(i32(tLast) + ${s.S - s.T + 1}, 0, i32(S)));
let jEnd = P + seqEnd;`
    : `let jEnd = J;`;

  const body = `
${linearGroup(gx)}
if (wg >= GROUPS) { return; }
let tile = wg % NTILES;
let bg = wg / NTILES;
let g = bg % HKV;
let b = bg / HKV;
let t = tile * TQ + lid / G;
let h = g * G + lid % G;
let inRange = t < T;
var qr: array<f32, HD>;
if (inRange) {
  let o = ${rowOut};
  for (var d = 0u; d < HD; d++) { qr[d] = ${q}[o + d]; }
}
${pre}
${keyEnd}
for (var j0 = 0u; j0 < jEnd; j0 += BK) {
  workgroupBarrier();${stage}
  workgroupBarrier();
  if (inRange) {
    let n = min(BK, jEnd - j0);${inner}
  }
}
${post}`;

  const wgsl = renderModule({
    bindings,
    consts: {
      B: s.B,
      T: s.T,
      S: s.S,
      HQ: s.Hq,
      HKV: s.Hkv,
      HD: s.hd,
      P: s.P,
      J: s.P + s.S,
      G,
      TQ,
      BK,
      THREADS: threads,
      NTILES: nTiles,
      GROUPS: groups,
      NR: s.B * s.Hq * s.T,
      PBS: s.prefixBatched ? s.P * s.Hkv * s.hd : 0,
      SCALE: f32(s.scale),
    },
    workgroupVars: [`kt: array<f32, ${BK * s.hd}>`, ...(needV ? [`vt: array<f32, ${BK * s.hd}>`] : [])],
    entryPoint: "main",
    workgroupSize: [threads, 1, 1],
    params: ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_index) lid: u32"],
    body,
  });
  const pairs = s.B * s.Hq * s.T * (s.P + s.S) * s.hd;
  return {
    label: `attention_${mode}_${shapeLabel(s)}`,
    wgsl,
    entryPoint: "main",
    workgroupSize: [threads, 1, 1],
    dispatch: [gx, gy, 1],
    bindings,
    flops: (mode === "stats" ? 2 : 4 + (mode === "dq" ? 2 : 0)) * pairs,
  };
}
