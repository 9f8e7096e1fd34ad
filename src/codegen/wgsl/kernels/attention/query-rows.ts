// The kernels that own query rows: the forward pass, the backward's row statistics (log-sum-exp
// and delta = dout·out) and dq, or statistics and dq in one pass. One invocation owns RQ
// (query position, query head) rows and keeps their q, dout and accumulators in registers, so each
// key element it loads feeds RQ multiply-adds; a workgroup holds the G = Hq/Hkv query heads of one
// kv head for a run of positions, so every key it reads is the same for all its invocations. The keys are read straight from storage at
// workgroup-uniform addresses (a cached load on a GPU; on a CPU adapter the subgroup's lanes
// load different keys of a block and share them by subgroupBroadcast, see sharedLoadLanes): no
// workgroup memory and no barriers. Keys are walked once, prefix first ([prefix |
// sequence], as the reference orders them), in blocks of BK whose scores stay in registers; the
// running max and sum (online softmax) are rescaled once per block, so memory stays O(T·hd) per
// head. With `causal` a workgroup stops at the last key its last query sees; each row still masks
// its own keys (query t sees sequence key s iff s ≤ t + S − T).
//
// The one-pass backward ("stats_dq") accumulates dq against the running max like the forward's
// output, dq = scale·Σ e_j·(dp_j − delta)·k_j / Σ e_j with e_j = exp(score_j − max), which is the
// reference's Σ p_j·(dp_j − delta)·scale·k_j with p_j = exp(score_j − lse).

import { sharedLoadLanes, type DeviceCaps } from "../../caps.js";
import type { KernelBinding, KernelSpec } from "../../kernel.js";
import { enablesFor, f32, renderModule, splitGrid } from "../../render.js";
import { checkShape, headDimLoop, linearGroup, NEG, shapeLabel, storage, type AttentionShape } from "./shape.js";

export type QueryRowMode = "forward" | "stats" | "dq" | "stats_dq";

/** Binding names; absent ones are not bound in that mode. */
export interface QueryRowNames {
  q: string;
  k: string;
  v?: string;
  pk?: string;
  pv?: string;
  /** forward: the output; stats, stats_dq: the forward output read for delta. */
  out?: string;
  dout?: string;
  /** [lse (B·Hq·T) | delta (B·Hq·T)], rows ordered (b, h, t). */
  stats?: string;
  dq?: string;
}

export interface QueryRowGeometry {
  /** Query positions per workgroup. */
  TQ: number;
  /** Keys per block (unrolled, scores in registers). */
  BK: number;
  /** Query rows per invocation: each key loaded feeds RQ of them. */
  RQ: number;
  threads: number;
  groups: number;
}

/**
 * Rows per workgroup and whether the head-dimension loops unroll, per device and head size. On
 * llvmpipe, measured interleaved at stories260K's shape (B8 T128 Hq8 Hkv4 hd8) against 32
 * invocations of 4 rows with loops: one subgroup of invocations (8 rows of 4: less causal waste
 * per tile) with the hd loops unrolled (q, dout and the accumulators then stay in registers) ran
 * the forward 1.6x and the statistics-and-dq pass 1.4x faster, for about 2 s more compile time per
 * kernel; the smaller tiles alone ran 1.1-1.3x faster at hd 16 and 64 and unrolling there was not
 * measured. GPUs keep 32 invocations with loops (not measured there).
 */
export interface QueryRowTuning {
  /** Invocations a workgroup is sized for (before rounding to whole subgroups). */
  invocations: number;
  unrollHd: number;
}

export function queryRowTuning(s: AttentionShape, caps: DeviceCaps): QueryRowTuning {
  return caps.isCpu ? { invocations: 8, unrollHd: 8 } : { invocations: 32, unrollHd: 0 };
}

export function queryRowGeometry(s: AttentionShape, caps: DeviceCaps, t: QueryRowTuning = queryRowTuning(s, caps)): QueryRowGeometry {
  const G = s.Hq / s.Hkv;
  const RQ = 4;
  const BK = Math.max(1, Math.min(8, s.P + s.S));
  // Enough lanes to fill SIMD, few enough that a causal tile wastes little on the keys only its
  // last rows see.
  const TQ = Math.max(1, Math.min(Math.ceil((t.invocations * RQ) / G), s.T));
  // Lanes that share key loads must all exist: whole subgroups (the extra lanes own no rows).
  const unit = sharedLoadLanes(caps) || 1;
  const threads = Math.ceil(Math.ceil((TQ * G) / RQ) / unit) * unit;
  if (threads > caps.maxInvocationsPerWorkgroup) throw new Error(`attention: ${G} heads per kv head exceed one workgroup`);
  return { TQ, BK, RQ, threads, groups: s.B * s.Hkv * Math.ceil(s.T / TQ) };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** A balanced max/sum of expressions (shorter dependency chains than a left fold). */
function tree(xs: string[], op: (a: string, b: string) => string): string {
  if (xs.length === 1) return xs[0]!;
  const h = Math.ceil(xs.length / 2);
  return op(tree(xs.slice(0, h), op), tree(xs.slice(h), op));
}

interface Segment {
  /** Keys in this segment (a WGSL u32 expression, workgroup-uniform). */
  end: string;
  k: string;
  v: string;
  /** Element offset of key `j` of this segment for batch row b, kv head g. */
  off: (j: string) => string;
  /** Whether this row sees key `j` (j < end is checked separately). */
  visible: (j: string, row: number) => string;
}

export function queryRowKernel(s: AttentionShape, mode: QueryRowMode, names: QueryRowNames, caps: DeviceCaps, tuning?: QueryRowTuning): KernelSpec {
  checkShape(s);
  const G = s.Hq / s.Hkv;
  const t = tuning ?? queryRowTuning(s, caps);
  const { TQ, BK, RQ, threads, groups } = queryRowGeometry(s, caps, t);
  const needV = mode !== "stats";
  const needDout = mode !== "forward";
  const online = mode !== "dq";
  const writeStats = mode === "stats" || mode === "stats_dq";
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
  const out = mode === "forward" || writeStats ? need(names.out, "out") : "";
  const dout = needDout ? need(names.dout, "dout") : "";
  const stats = mode === "forward" ? "" : need(names.stats, "stats");
  const dq = mode === "dq" || mode === "stats_dq" ? need(names.dq, "dq") : "";
  if (mode === "forward") bind(out, "read_write");
  if (writeStats) bind(out, "read");
  if (needDout) bind(dout, "read");
  if (stats) bind(stats, writeStats ? "read_write" : "read");
  if (dq) bind(dq, "read_write");
  if (bindings.length > 8) throw new Error(`attention ${mode}: ${bindings.length} storage buffers exceed 8`);

  const J = range(BK);
  // On a CPU adapter with one subgroup size every key element would be loaded by each lane on its
  // own (llvmpipe loads non-constant offsets lane by lane): there the subgroup's lanes load
  // different keys of the block and subgroupBroadcast hands each key to every lane.
  const sg = sharedLoadLanes(caps);
  const KL = range(sg ? Math.ceil(BK / sg) : 0);
  const segments: Segment[] = [];
  if (s.P)
    segments.push({ end: "P", k: pk, v: pv, off: (j) => `b * PBS + (${j} * HKV + g) * HD`, visible: () => "true" });
  segments.push({
    end: "seqEnd",
    k,
    v,
    off: (j) => `((b * S + ${j}) * HKV + g) * HD`,
    visible: (j, i) => (s.causal ? `i32(${j}) <= lim${i}` : "true"),
  });

  // What the d loop of a block accumulates and what the block does with the scores. Names with
  // `${i}` belong to the invocation's i-th row, with `_${j}` to the block's j-th key.
  const I = range(RQ);
  const dpNeeded = mode === "dq" || mode === "stats_dq";
  const each = (f: (i: number) => string): string[] => I.map(f);
  const eachIJ = (f: (i: number, j: number) => string): string[] => I.flatMap((i) => J.map((j) => f(i, j)));
  function block(seg: Segment): string {
    const L: string[] = [];
    L.push(`for (var j0 = 0u; j0 < ${seg.end}; j0 += BK) {`);
    if (sg) for (const m of KL) L.push(`  let ol${m} = ${seg.off(`min(j0 + sl + ${m * sg}u, ${seg.end} - 1u)`)};`);
    else for (const j of J) L.push(`  let o${j} = ${seg.off(`min(j0 + ${j}u, ${seg.end} - 1u)`)};`);
    // Key j's element d of `buf` as `name${j}`: loaded, or broadcast from the lane that loaded it.
    const keyElems = (buf: string, name: string): string[] =>
      sg
        ? [
            ...KL.map((m) => `    let ${name}l${m} = ${buf}[ol${m} + d];`),
            ...J.map((j) => `    let ${name}${j} = subgroupBroadcast(${name}l${Math.floor(j / sg)}, ${j % sg}u);`),
          ]
        : J.map((j) => `    let ${name}${j} = ${buf}[o${j} + d];`);
    L.push(...eachIJ((i, j) => `  var s${i}_${j} = 0.0;`));
    if (dpNeeded) L.push(...eachIJ((i, j) => `  var p${i}_${j} = 0.0;`));
    L.push(`  for (var d = 0u; d < HDN; d++) {`);
    L.push(...each((i) => `    let q${i} = qr${i}[d];`));
    if (dpNeeded) L.push(...each((i) => `    let dd${i} = dor${i}[d];`));
    L.push(...keyElems(seg.k, "k"));
    for (const j of J) L.push(...each((i) => `    s${i}_${j} += q${i} * k${j};`));
    if (dpNeeded) {
      L.push(...keyElems(seg.v, "v"));
      for (const j of J) L.push(...each((i) => `    p${i}_${j} += dd${i} * v${j};`));
    }
    L.push(`  }`);
    for (const i of I)
      for (const j of J) {
        const jj = `(j0 + ${j}u)`;
        const vis = seg.visible(jj, i);
        L.push(`  let x${i}_${j} = select(${NEG}, s${i}_${j} * SCALE, ${jj} < ${seg.end}${vis === "true" ? "" : ` && ${vis}`});`);
      }
    let corr = (_: number): string => "";
    if (online) {
      for (const i of I) {
        L.push(`  let mb${i} = max(m${i}, ${tree(J.map((j) => `x${i}_${j}`), (a, b) => `max(${a}, ${b})`)});`);
        L.push(`  let corr${i} = exp(m${i} - mb${i});`);
        L.push(...J.map((j) => `  let e${i}_${j} = select(0.0, exp(x${i}_${j} - mb${i}), x${i}_${j} > ${NEG});`));
        L.push(`  l${i} = l${i} * corr${i} + ${tree(J.map((j) => `e${i}_${j}`), (a, b) => `(${a} + ${b})`)};`, `  m${i} = mb${i};`);
      }
      corr = (i) => ` * corr${i}`;
    } else {
      L.push(...eachIJ((i, j) => `  let e${i}_${j} = select(0.0, exp(x${i}_${j} - lse${i}), x${i}_${j} > ${NEG});`));
    }
    if (mode !== "stats") {
      const src = mode === "forward" ? seg.v : seg.k;
      if (dpNeeded) L.push(...eachIJ((i, j) => `  let c${i}_${j} = e${i}_${j} * (p${i}_${j} - delta${i});`));
      const w = mode === "forward" ? "e" : "c";
      L.push(`  for (var d = 0u; d < HDN; d++) {`);
      L.push(...keyElems(src, "y"));
      L.push(...each((i) => `    acc${i}[d] = acc${i}[d]${corr(i)} + ${J.map((j) => `${w}${i}_${j} * y${j}`).join(" + ")};`));
      L.push(`  }`);
    }
    L.push(`}`);
    return L.join("\n");
  }

  // Row i of this invocation: its position, head, clamped offsets and causal limit.
  const rows: string[] = [];
  for (const i of I) {
    rows.push(`let r${i} = lid + ${i * threads}u;`);
    rows.push(`let t${i} = tile * TQ + r${i} / G;`, `let h${i} = g * G + r${i} % G;`, `let live${i} = r${i} < TQ * G && t${i} < T;`);
    rows.push(`// Rows past T compute on row T − 1 and store nothing, so every load stays in bounds.`);
    rows.push(`let tc${i} = min(t${i}, T - 1u);`, `let ro${i} = ((b * T + tc${i}) * HQ + h${i}) * HD;`, `let row${i} = (b * HQ + h${i}) * T + tc${i};`);
    if (s.causal) rows.push(`let lim${i} = i32(tc${i}) + ${s.S - s.T};`);
    rows.push(`var qr${i}: array<f32, HD>;`, `for (var d = 0u; d < HDN; d++) { qr${i}[d] = ${q}[ro${i} + d]; }`);
    if (needDout) {
      rows.push(`var dor${i}: array<f32, HD>;`, `var delta${i} = 0.0;`);
      rows.push(`for (var d = 0u; d < HDN; d++) {`, `  dor${i}[d] = ${dout}[ro${i} + d];`);
      if (writeStats) rows.push(`  delta${i} += dor${i}[d] * ${out}[ro${i} + d];`);
      rows.push(`}`);
    }
    if (mode === "dq") rows.push(`let lse${i} = ${stats}[row${i}];`, `delta${i} = ${stats}[NR + row${i}];`);
    if (online) rows.push(`var m${i} = ${NEG};`, `var l${i} = 0.0;`);
    if (mode !== "stats") rows.push(`var acc${i}: array<f32, HD>;`);
  }

  const post: string[] = [];
  for (const i of I) {
    post.push(`if (live${i}) {`);
    if (mode === "forward") {
      post.push(`  let inv = select(0.0, 1.0 / l${i}, l${i} > 0.0);`, `  for (var d = 0u; d < HDN; d++) { ${out}[ro${i} + d] = acc${i}[d] * inv; }`);
    }
    if (mode === "dq") post.push(`  for (var d = 0u; d < HDN; d++) { ${dq}[ro${i} + d] = acc${i}[d] * SCALE; }`);
    if (mode === "stats_dq") {
      post.push(`  let f = select(0.0, SCALE / l${i}, l${i} > 0.0);`, `  for (var d = 0u; d < HDN; d++) { ${dq}[ro${i} + d] = acc${i}[d] * f; }`);
    }
    if (writeStats) post.push(`  ${stats}[row${i}] = select(${NEG}, m${i} + log(l${i}), l${i} > 0.0);`, `  ${stats}[NR + row${i}] = delta${i};`);
    post.push(`}`);
  }

  // The last key any query of this workgroup sees bounds the loop, identically for all its threads.
  const seqEnd = s.causal
    ? `let tLast = min(T, tile * TQ + TQ) - 1u;
let seqEnd = u32(clamp(i32(tLast) + ${s.S - s.T + 1}, 0, i32(S)));`
    : `let seqEnd = S;`;

  const body = `
${linearGroup(splitGrid(groups, caps)[0])}
if (wg >= GROUPS) { return; }
${headDimLoop(q, s.hd <= t.unrollHd)}
let tile = wg % NTILES;
let bg = wg / NTILES;
let g = bg % HKV;
let b = bg / HKV;
${rows.join("\n")}
${seqEnd}
${segments.map(block).join("\n")}
${post.join("\n")}`;

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
      P: s.P,
      G,
      TQ,
      BK,
      NTILES: Math.ceil(s.T / TQ),
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
  const pairs = s.B * s.Hq * s.T * (s.P + s.S) * s.hd;
  const perPair = { forward: 4, stats: 2, dq: 6, stats_dq: 6 }[mode];
  return {
    label: `attention_${mode}_${shapeLabel(s)}`,
    wgsl,
    entryPoint: "main",
    workgroupSize: [threads, 1, 1],
    dispatch: [gx, gy, 1],
    bindings,
    flops: perPair * pairs,
  };
}
