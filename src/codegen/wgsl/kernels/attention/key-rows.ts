// The backward kernels that own key rows: dk/dv for the sequence keys, or dprefix_k/dprefix_v.
// One invocation owns KR keys of one kv head (each query element it loads feeds KR of them) and
// sums, in registers, the contributions of every query row that sees them: the G query heads
// grouped on that kv head and, for a prefix shared by the batch, every batch row too. So no two invocations write the same element and no atomics are
// needed. The query rows (q, dout and the row's lse and delta from the statistics pass) are walked
// in blocks of BR, the same rows for every invocation of the workgroup, so they are read straight
// from storage at uniform addresses (a cached load on a GPU; on a CPU adapter the subgroup's lanes
// split them and share them by subgroupBroadcast, since llvmpipe would load them lane by lane): no
// workgroup memory and no barriers. The probabilities are recomputed as exp(q·k·scale − lse).

import { sharedLoadLanes, type DeviceCaps } from "../../caps.js";
import type { KernelBinding, KernelSpec } from "../../kernel.js";
import { enablesFor, f32, renderModule, splitGrid } from "../../render.js";
import { checkShape, headDimLoop, linearGroup, shapeLabel, storage, type AttentionShape } from "./shape.js";

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
  /** Keys per workgroup (= threads × KR). */
  KT: number;
  /** Keys per invocation: each query row loaded feeds KR of them. */
  KR: number;
  /** Query rows per block (unrolled, scores in registers). */
  BR: number;
  threads: number;
  groups: number;
}

/** Keys per invocation, invocations per workgroup and query rows per block (bench sweeps try others). */
export interface KeyRowTuning {
  KR: number;
  threads: number;
  BR: number;
  /** Unroll the head-dimension loops (see headDimLoop): faster at small hd, slower to compile. */
  unrollHd: number;
}

/**
 * Per device and head size. On llvmpipe, measured interleaved against the earlier 2 keys x 16
 * invocations x 4 rows: at hd ≤ 8, 4 x 8 x 2 with the hd loops unrolled runs 1.8x faster
 * (stories260K) for the same compile time; 4 rows a block instead of 2 then ran it in 1.86-1.99
 * against 2.14-2.24 ms (median of 8 dispatches a pass; 8 rows 2.94, 2 x 8 x 4 2.13): each lane of
 * the subgroup loads one of the block's rows, so with 2 rows six lanes loaded rows no key used.
 * Above, longer row blocks: every row a lane loads and broadcasts then feeds all 8 lanes' keys
 * (with 4 rows, half the lanes' loads were clamped duplicates). Against 4 x 8 x 4, 8 rows ran tiny ChatGLM2 (hd 16, T 306) in 1.59 against 2.29 ms
 * for the same JIT time, and 16 rows GPT-2 small (hd 64, T 128) in 3.8-4.4 against 9.7-11.9 ms
 * for 0.35 s more JIT; 32 rows were no faster and JIT twice as long. Tiles keep 32 keys. GPUs
 * keep 2 x 16 x 4 (not measured there).
 */
export function keyRowTuning(s: AttentionShape, caps: DeviceCaps): KeyRowTuning {
  if (!caps.isCpu) return { KR: 2, threads: 16, BR: 4, unrollHd: 8 };
  if (s.hd <= 8) return { KR: 4, threads: 8, BR: 4, unrollHd: 8 };
  return { KR: 4, threads: 8, BR: s.hd <= 16 ? 8 : 16, unrollHd: 8 };
}

export function keyRowGeometry(s: AttentionShape, which: "seq" | "prefix", caps: DeviceCaps, t: KeyRowTuning = keyRowTuning(s, caps)): KeyRowGeometry {
  const keys = which === "seq" ? s.S : s.P;
  const KR = Math.max(1, Math.min(t.KR, keys));
  // Small tiles: a causal tile starts at the first row its first key sees, so the rows only its
  // later keys see are masked work in proportion to KT.
  // Lanes that share row loads (sharedLoadLanes) must all exist: whole subgroups, the extra lanes
  // owning keys past the last.
  const unit = sharedLoadLanes(caps) || 1;
  const threads = Math.ceil(Math.max(1, Math.min(t.threads, Math.ceil(keys / KR), caps.maxInvocationsPerWorkgroup)) / unit) * unit;
  const KT = threads * KR;
  const BR = Math.max(1, Math.min(t.BR, s.T * (s.Hq / s.Hkv)));
  // A shared prefix has one owner for all batch rows.
  const owners = which === "prefix" && !s.prefixBatched ? 1 : s.B;
  return { KT, KR, BR, threads, groups: owners * s.Hkv * Math.ceil(keys / KT) };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export function keyRowKernel(s: AttentionShape, which: "seq" | "prefix", names: KeyRowNames, caps: DeviceCaps, tuning?: KeyRowTuning): KernelSpec {
  checkShape(s);
  if (which === "prefix" && !s.P) throw new Error("attention: prefix gradients without a prefix");
  const G = s.Hq / s.Hkv;
  const t = tuning ?? keyRowTuning(s, caps);
  const { KT, KR, BR, threads, groups } = keyRowGeometry(s, which, caps, t);
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
  const keyOff = (kc: string): string => (which === "seq" ? `((b * S + ${kc}) * HKV + g) * HD` : `b * PBS + (${kc} * HKV + g) * HD`);
  // Sequence keys see queries t ≥ s − (S − T); prefix keys see every query.
  const causalSeq = s.causal && which === "seq";
  const rowStart = causalSeq ? `u32(max(i32(tile * KT) - ${s.S - s.T}, 0)) * G` : "0u";
  const R = range(BR);
  const I = range(KR);
  const Q = names.q;
  const D = names.dout;
  const ST = names.stats;
  const eachIR = (f: (i: number, r: number) => string): string[] => I.flatMap((i) => R.map((r) => f(i, r)));
  // On CPU adapters the block's rows, the same for every lane, are loaded once across the
  // subgroup: lane l loads rows l, l + sg, ... of the block and subgroupBroadcast shares them.
  const sg = sharedLoadLanes(caps);
  const RL = range(sg ? Math.ceil(BR / sg) : 0);
  const rowElem = (buf: string, name: string, at: (r: string) => string): string[] =>
    sg
      ? [
          ...RL.map((m) => `${name}l${m} = ${buf}[${at(`l${m}`)}];`),
          ...R.map((r) => `${name}${r} = subgroupBroadcast(${name}l${Math.floor(r / sg)}, ${r % sg}u);`),
        ].map((x) => `let ${x}`)
      : R.map((r) => `let ${name}${r} = ${buf}[${at(`${r}`)}];`);

  // Names with `${i}` belong to the invocation's i-th key, with `_${r}` to the block's r-th row.
  const blk: string[] = [`for (var rb = r0; rb < ROWS; rb += BR) {`];
  for (const r of R) {
    blk.push(`  let rr${r} = min(rb + ${r}u, ROWS - 1u);`);
    blk.push(`  let t${r} = rr${r} / G;`, `  let h${r} = g * G + rr${r} % G;`);
    if (!sg) blk.push(`  let o${r} = ((qb * T + t${r}) * HQ + h${r}) * HD;`, `  let w${r} = (qb * HQ + h${r}) * T + t${r};`);
  }
  for (const m of RL) {
    blk.push(`  let rrl${m} = min(rb + sl + ${m * sg}u, ROWS - 1u);`);
    blk.push(`  let ol${m} = ((qb * T + rrl${m} / G) * HQ + g * G + rrl${m} % G) * HD;`, `  let wl${m} = (qb * HQ + g * G + rrl${m} % G) * T + rrl${m} / G;`);
  }
  blk.push(...eachIR((i, r) => `  var s${i}_${r} = 0.0;`), ...eachIR((i, r) => `  var p${i}_${r} = 0.0;`));
  blk.push(`  for (var d = 0u; d < HDN; d++) {`);
  for (const i of I) blk.push(`    let kd${i} = kr${i}[d];`, `    let vd${i} = vr${i}[d];`);
  const qAndDout = [...rowElem(Q, "qv", (r) => `o${r} + d`), ...rowElem(D, "go", (r) => `o${r} + d`)].map((x) => `    ${x}`);
  blk.push(...qAndDout);
  for (const r of R) for (const i of I) blk.push(`    s${i}_${r} += qv${r} * kd${i};`, `    p${i}_${r} += go${r} * vd${i};`);
  blk.push(`  }`);
  blk.push(...[...rowElem(ST, "lse", (r) => `w${r}`), ...rowElem(ST, "delta", (r) => `NR + w${r}`)].map((x) => `  ${x}`));
  for (const i of I)
    for (const r of R) {
      const vis = causalSeq ? ` && i32(kc${i}) <= i32(t${r}) + ${s.S - s.T}` : "";
      blk.push(`  let e${i}_${r} = select(0.0, exp(s${i}_${r} * SCALE - lse${r}), rb + ${r}u < ROWS${vis});`);
      blk.push(`  let c${i}_${r} = e${i}_${r} * (p${i}_${r} - delta${r}) * SCALE;`);
    }
  blk.push(`  for (var d = 0u; d < HDN; d++) {`);
  blk.push(...qAndDout);
  for (const i of I) {
    blk.push(`    dv${i}[d] += ${R.map((r) => `e${i}_${r} * go${r}`).join(" + ")};`);
    blk.push(`    dk${i}[d] += ${R.map((r) => `c${i}_${r} * qv${r}`).join(" + ")};`);
  }
  blk.push(`  }`, `}`);

  const keysInit: string[] = [];
  for (const i of I) {
    keysInit.push(`let kk${i} = tile * KT + lid + ${i * threads}u;`);
    keysInit.push(`let kc${i} = min(kk${i}, KEYS - 1u);`, `let ko${i} = ${keyOff(`kc${i}`)};`);
    keysInit.push(`var kr${i}: array<f32, HD>;`, `var vr${i}: array<f32, HD>;`, `var dk${i}: array<f32, HD>;`, `var dv${i}: array<f32, HD>;`);
    keysInit.push(`for (var d = 0u; d < HDN; d++) {`, `  kr${i}[d] = ${names.k}[ko${i} + d];`, `  vr${i}[d] = ${names.v}[ko${i} + d];`, `}`);
  }
  const stores: string[] = [];
  for (const i of I) {
    stores.push(`if (kk${i} < KEYS) {`, `  for (var d = 0u; d < HDN; d++) {`);
    stores.push(`    ${names.dk}[ko${i} + d] = dk${i}[d];`, `    ${names.dv}[ko${i} + d] = dv${i}[d];`, `  }`, `}`);
  }

  const body = `
${linearGroup(splitGrid(groups, caps)[0])}
if (wg >= GROUPS) { return; }
${headDimLoop(names.q, s.hd <= t.unrollHd)}
let tile = wg % NTILES;
let bg = wg / NTILES;
let g = bg % HKV;
let b = bg / HKV;
// Keys past the last compute on it and store nothing, so every load stays in bounds.
${keysInit.join("\n")}
let r0 = ${rowStart};
for (var qb = ${shared ? "0u" : "b"}; qb < ${shared ? "B" : "b + 1u"}; qb++) {
${blk.map((l) => "  " + l).join("\n")}
}
${stores.join("\n")}`;

  const [gx, gy] = splitGrid(groups, caps);
  const wgsl = renderModule({
    enables: enablesFor(caps, false, sg > 0),
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
      BR,
      ROWS: s.T * G,
      NTILES: Math.ceil(keys / KT),
      GROUPS: groups,
      NR: s.B * s.Hq * s.T,
      PBS: s.prefixBatched ? s.P * s.Hkv * s.hd : 0,
      SCALE: f32(s.scale),
    },
    entryPoint: "main",
    workgroupSize: [threads, 1, 1],
    params: [
      "@builtin(workgroup_id) wid: vec3<u32>",
      "@builtin(local_invocation_index) lid: u32",
      ...(sg ? ["@builtin(subgroup_invocation_id) sl: u32"] : []),
    ],
    body,
  });
  return {
    label: `attention_d${which === "seq" ? "kv" : "prefix"}_${shapeLabel(s)}`,
    wgsl,
    entryPoint: "main",
    workgroupSize: [threads, 1, 1],
    dispatch: [gx, gy, 1],
    bindings,
    flops: 8 * s.B * s.Hq * s.T * keys * s.hd,
  };
}
