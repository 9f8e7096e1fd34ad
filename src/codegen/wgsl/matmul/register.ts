// Register-blocked matmul straight from storage, no workgroup memory. Each thread keeps tm×tn
// accumulators; the tm rows come from the workgroup id, so every thread of a workgroup needs the
// same row values, and the tn columns are the thread's own. Operands are read as vec4 whenever
// the layout and sizes keep them aligned. This is the fast form on CPU adapters (llvmpipe:
// barriers and workgroup memory cost more than they save); GPUs usually prefer the tiled variant.
//
// On llvmpipe a storage load whose offset is not a constant is done lane by lane, with a bounds
// check per element, even when every lane asks for the same address; those loads, not the
// arithmetic, bound the loop. With a fixed subgroup size (`sg`), the subgroup's lanes therefore
// split the tm rows between them, each loading tm/sg rows once, and subgroupBroadcast (a register
// shuffle there) hands each row to every lane: the row loads drop by the subgroup size, and larger
// row blocks become worth their registers.

import { sharedLoadLanes, type DeviceCaps } from "../caps.js";
import type { KernelSpec } from "../kernel.js";
import { enablesFor, renderModule, splitGrid, type ModuleParts } from "../render.js";
import { loopedStoreScalar, loopedStoreVec4, matmulBindings, operandNames, storeScalar, storeVec4 } from "./common.js";
import { checkProblem, type BLayout, type MatmulPair, type MatmulProblem, type RegisterTuning, type SharedRows } from "./problem.js";

export const DEFAULT_REGISTER_TUNING: RegisterTuning = { tm: 8, tn: 4, wg: 64 };

/**
 * The tuning for this problem and device: on CPU adapters that run one subgroup size, rows shared
 * across the subgroup; the plain default elsewhere and for M under one subgroup. On llvmpipe
 * 32-row blocks ran 20-30% faster than 16 at training shapes (the spilled accumulators cost less
 * than the loads they save) but take longer to compile per kernel, so they are used where M is
 * large (≥ 512 rows: long runs on big batches) or the product is (≥ 2^25 multiply-adds, M ≥ 128);
 * smaller M takes 16 rows, or one subgroup.
 */
export function defaultRegisterTuning(p: MatmulProblem, caps: DeviceCaps): RegisterTuning {
  const sg = sharedLoadLanes(caps);
  // Narrow outputs (fewer than 8 column blocks: a LoRA down-projection, N = r) split the rows
  // across the workgroup's threads instead of sharing them (see registerMatmul). There, on
  // llvmpipe, 4-row blocks ran as fast as 16 at r = 12 (306 x 12 x 64: 108 against 134 us;
  // 128 x 12 x 306: 174 against 227 us) and took a third to a fifth of the JIT time (0.3 against
  // 1.1-1.8 s a kernel).
  if (sg > 0 && Math.ceil(p.N / DEFAULT_REGISTER_TUNING.tn) < 8) return { ...DEFAULT_REGISTER_TUNING, tm: 4 };
  if (sg === 0 || p.M < sg) return DEFAULT_REGISTER_TUNING;
  // 32-row blocks also where M is short but the product large (GPT-2 small at 1 x 128: every
  // projection and the head): 10-40% faster there, interleaved at M = 128, for about 0.3 s more
  // JIT per kernel; 64-row blocks were slower again.
  const big = p.M * p.N * p.K >= 2 ** 25;
  const tm = [32, 16, 8, 4].find((rows) => rows % sg === 0 && p.M >= (rows === 32 ? (big ? 128 : 512) : 2 * rows)) ?? sg;
  return { tm, tn: 4, wg: Math.max(64, sg), sg };
}

export function registerMatmul(p: MatmulProblem, caps: DeviceCaps, t: RegisterTuning = defaultRegisterTuning(p, caps)): KernelSpec {
  checkProblem(p);
  const { M, N, K } = p;
  const { tm, tn } = t;
  if (tn % 4 !== 0 || tm < 1 || t.wg < 1) throw new Error(`register matmul: bad tuning ${JSON.stringify(t)}`);
  // Narrow outputs (small models: N = 64) would leave most of a wide workgroup idle: use only as
  // many threads along N as there are column blocks, rounded up to a SIMD-friendly multiple of 8.
  // Fewer than 8 column blocks (a LoRA down-projection, N = r) would still idle most lanes: then
  // the workgroup's threads also split the rows, RL row blocks of CL column blocks each (rows
  // are then per thread, not uniform).
  const blocks = Math.ceil(N / tn);
  const narrow = blocks < 8;
  const CL = narrow ? blocks : 0;
  // At least 4 workgroups where there are rows enough, so every core (or SM) gets some.
  const RL = narrow ? Math.max(1, Math.min(Math.floor(t.wg / blocks), Math.floor(Math.ceil(M / tm) / 4))) : 1;
  const sg = narrow ? 0 : (t.sg ?? 0);
  if (sg > 0) {
    if (!caps.subgroups || caps.subgroupSize !== sg) throw new Error(`register matmul: rows shared across ${sg} lanes need a device whose subgroups are exactly ${sg} lanes`);
    if (tm % sg !== 0 || t.wg % sg !== 0) throw new Error(`register matmul: tm and wg must be multiples of sg in ${JSON.stringify(t)}`);
  }
  // With shared rows every subgroup must be whole, so the workgroup stays a multiple of sg.
  const unit = Math.max(8, sg);
  const wg = narrow ? CL * RL : Math.min(t.wg, Math.max(unit, Math.ceil(blocks / unit) * unit));
  if (wg > caps.maxInvocationsPerWorkgroup || wg > caps.maxWorkgroupSizeX) throw new Error(`register matmul: workgroup ${wg} exceeds the device`);
  const names = operandNames(p);
  if (p.aMap && p.terms?.length) throw new Error("register matmul: a mapped A takes no further terms");
  if (p.pair && (!caps.isCpu || p.terms?.length || p.aMap || p.epilogue || p.bias || p.accumulate || (p.alpha !== undefined && p.alpha !== 1)))
    throw new Error("register matmul: a pair of products runs on CPU adapters only, without terms, map, epilogue, bias, alpha or accumulate");
  // A's reads, through its map where it has one (the first product only).
  const readA = (s: Seg, idx: string, vec: boolean): string => {
    const a = `${s.A}[${idx}]`;
    if (!p.aMap || s.tag) return a;
    const u = `${p.aMap.with}[${idx}]`;
    return vec ? p.aMap.vec4(a, u) : p.aMap.scalar(a, u);
  };

  // One product, or several summed into the same accumulators (MatmulProblem.terms): each term
  // has its own operands and K, so its K-dependent offsets carry the term's tag (none for the
  // first, which keeps a one-term kernel's text as it was) and its K is a constant of its own.
  // vec4 views only where every vector a thread reads starts on a multiple of 4 elements; an
  // operand bound as a vec4 array is read as vec4 everywhere, the K tail included.
  // K is unrolled by 4 only when both operands can be read as vec4; misaligned (odd) shapes take
  // one k per iteration, which keeps the shader small (scalar loads JIT slowly on llvmpipe), and
  // then the K-contiguous layouts ("mk", "nk") cannot be vec4 either.
  const segs: Seg[] = [{ a: names.a, b: names.b, K, bF16: !!p.bF16, bLayout: p.bLayout }, ...(p.terms ?? [])].map((t, i) => {
    const bLayout = t.bLayout ?? p.bLayout;
    const aCan = p.aLayout === "mk" ? t.K % 4 === 0 : M % 4 === 0 && tm % 4 === 0;
    const bCan = bLayout === "nk" ? t.K % 4 === 0 : N % 4 === 0;
    const unroll = aCan && bCan;
    return {
      A: t.a,
      B: t.b,
      K: t.K,
      kName: i === 0 ? "K" : `K${i}`,
      tag: i === 0 ? "" : `t${i}_`,
      bF16: !!t.bF16,
      bLayout,
      unroll,
      // Shared rows of a [K,M] operand are loaded a value per lane (consecutive rows, one per lane).
      aVec: p.aLayout === "mk" ? unroll : aCan && sg === 0,
      bVec: bLayout === "nk" ? unroll : bCan,
    };
  });
  const cVec = N % 4 === 0;
  const nq = tn / 4;
  const R = range(tm);
  const C = range(tn);
  const Q = range(nq);
  const I4 = range(4);

  const pre: string[] = narrow
    ? [`let n0 = (lid.x % ${CL}u) * ${tn}u;`, `let m0 = ((wid.y + wid.z * GRID_Y) * ${RL}u + lid.x / ${CL}u) * ${tm}u;`]
    : [`let n0 = (wid.x * ${wg}u + lid.x) * ${tn}u;`, `let m0 = (wid.y + wid.z * GRID_Y) * ${tm}u;`];
  // Clamped row and column indices keep every load in bounds; stores check the real index.
  for (const r of R) pre.push(`let am${r} = min(m0 + ${r}u, M - 1u);`);
  for (const c of C) pre.push(`let bn${c} = min(n0 + ${c}u, N - 1u);`);
  // With shared rows, lane `sl` loads rows j·sg + sl of the block (clamped like am).
  const J = range(sg > 0 ? tm / sg : 0);
  // Row r of the block is on lane r % sg, in the lane's row group ⌊r / sg⌋.
  const broadcast = (value: string, row: number): string => `subgroupBroadcast(${value}, ${row % sg}u)`;
  for (const j of J) pre.push(`let lr${j} = min(m0 + ${j * sg}u + sl, M - 1u);`);
  for (const s of segs) {
    const K = s.kName;
    if (sg > 0 && s.aVec) for (const j of J) pre.push(`let ${s.tag}lb${j} = lr${j} * (${K} / 4u);`);
    if (sg === 0 && s.aVec && p.aLayout === "mk") for (const r of R) pre.push(`let ${s.tag}ab${r} = am${r} * (${K} / 4u);`);
    if (s.bVec && s.bLayout === "nk") for (const c of C) pre.push(`let ${s.tag}bb${c} = bn${c} * (${K} / 4u);`);
  }
  // The [K,M] and [K,N] offsets do not depend on K: every term shares them.
  if (segs.some((s) => s.aVec) && p.aLayout === "km") for (const q of range(tm / 4)) pre.push(`let amq${q} = min(m0 / 4u + ${q}u, M / 4u - 1u);`);
  if (segs.some((s) => s.bVec && s.bLayout === "kn")) for (const q of Q) pre.push(`let bnq${q} = min(n0 / 4u + ${q}u, N / 4u - 1u);`);
  for (const r of R) for (const q of Q) pre.push(`var acc${r}_${q} = vec4<f32>(0.0);`);

  // Loads for one step of `w` k values starting at `kb`; accessors name element (row|col, i).
  interface ALoads {
    stmts: string[];
    at: (r: number, i: number) => string;
    /** Statements that make row r's values, emitted just before that row's updates. */
    row?: (r: number) => string[];
  }
  function loadA(s: Seg, kb: string, k4: string, w: number): ALoads {
    if (sg > 0) return loadSharedA(s, kb, k4, w);
    const st: string[] = [];
    const { tag } = s;
    const K = s.kName;
    if (w === 4 && s.aVec && p.aLayout === "mk") {
      for (const r of R) st.push(`let a${r} = ${readA(s, `${tag}ab${r} + ${k4}`, true)};`);
      return { stmts: st, at: (r, i) => `a${r}[${i}]` };
    }
    if (s.aVec && p.aLayout === "km") {
      for (const i of range(w)) for (const q of range(tm / 4)) st.push(`let a${i}_${q} = ${readA(s, `(${kb} + ${i}u) * (M / 4u) + amq${q}`, true)};`);
      return { stmts: st, at: (r, i) => `a${i}_${Math.floor(r / 4)}[${r % 4}]` };
    }
    for (const r of R)
      for (const i of range(w)) {
        const idx = p.aLayout === "mk" ? `am${r} * ${K} + ${kb} + ${i}u` : `(${kb} + ${i}u) * M + am${r}`;
        st.push(`let a${r}_${i} = ${readA(s, idx, false)};`);
      }
    return { stmts: st, at: (r, i) => `a${r}_${i}` };
  }
  // Each lane loads its own rows of the block, then every row is broadcast from the lane that has it.
  // Rows are broadcast one at a time next to their updates, so only one row's values are live.
  function loadSharedA(s: Seg, kb: string, k4: string, w: number): ALoads {
    const st: string[] = [];
    const { tag } = s;
    const K = s.kName;
    if (w === 4 && s.aVec) {
      for (const j of J) st.push(`let av${j} = ${readA(s, `${tag}lb${j} + ${k4}`, true)};`);
    } else {
      for (const j of J)
        for (const i of range(w)) {
          const idx = p.aLayout === "mk" ? `lr${j} * ${K} + ${kb} + ${i}u` : `(${kb} + ${i}u) * M + lr${j}`;
          st.push(`let av${j}_${i} = ${readA(s, idx, false)};`);
        }
      if (w === 4) for (const j of J) st.push(`let av${j} = vec4<f32>(${I4.map((i) => `av${j}_${i}`).join(", ")});`);
    }
    const row = (r: number) => [`let a${r} = ${broadcast(w === 4 ? `av${Math.floor(r / sg)}` : `av${Math.floor(r / sg)}_0`, r)};`];
    return { stmts: st, at: (r, i) => (w === 4 ? `a${r}[${i}]` : `a${r}`), row };
  }
  function loadB(
    s: Seg,
    kb: string,
    k4: string,
    w: number,
  ): { stmts: string[]; at: (c: number, i: number) => string; vec?: (q: number, i: number) => string } {
    const st: string[] = [];
    const { B, tag } = s;
    const K = s.kName;
    const cvt = s.bF16 ? (e: string, vec: boolean) => (vec ? `vec4<f32>(${e})` : `f32(${e})`) : (e: string) => e;
    if (w === 4 && s.bVec && s.bLayout === "nk") {
      for (const c of C) st.push(`let b${c} = ${cvt(`${B}[${tag}bb${c} + ${k4}]`, true)};`);
      return { stmts: st, at: (c, i) => `b${c}[${i}]` };
    }
    if (s.bVec && s.bLayout === "kn") {
      for (const i of range(w)) for (const q of Q) st.push(`let b${i}_${q} = ${cvt(`${B}[(${kb} + ${i}u) * (N / 4u) + bnq${q}]`, true)};`);
      return { stmts: st, at: (c, i) => `b${i}_${Math.floor(c / 4)}[${c % 4}]`, vec: (q, i) => `b${i}_${q}` };
    }
    for (const c of C)
      for (const i of range(w)) {
        const idx = s.bLayout === "nk" ? `bn${c} * ${K} + ${kb} + ${i}u` : `(${kb} + ${i}u) * N + bn${c}`;
        st.push(`let b${c}_${i} = ${cvt(`${B}[${idx}]`, false)};`);
      }
    return { stmts: st, at: (c, i) => `b${c}_${i}` };
  }
  function step(seg: Seg, kb: string, k4: string, w: number): string[] {
    const a = loadA(seg, kb, k4, w);
    const b = loadB(seg, kb, k4, w);
    const s = [...a.stmts, ...b.stmts];
    const update = (r: number, i: number) => {
      for (const q of Q) {
        const bv = b.vec ? b.vec(q, i) : `vec4<f32>(${I4.map((j) => b.at(4 * q + j, i)).join(", ")})`;
        s.push(`acc${r}_${q} += ${a.at(r, i)} * ${bv};`);
      }
    };
    const row = a.row;
    if (row) {
      for (const r of R) {
        s.push(...row(r));
        for (const i of range(w)) update(r, i);
      }
    } else {
      for (const i of range(w)) for (const r of R) update(r, i);
    }
    return s;
  }

  const body: string[] = [...pre];
  const loops = (s: Seg) => {
    const K4 = s.unroll ? Math.floor(s.K / 4) : 0;
    if (K4 > 0) {
      body.push(`for (var k4 = 0u; k4 < ${K4}u; k4++) {`, `  let kb = k4 * 4u;`);
      body.push(...step(s, "kb", "k4", 4).map((l) => "  " + l));
      body.push("}");
    }
    if (K4 * 4 < s.K) {
      // The rest of K one value at a time, as a loop: unrolled tails made llvmpipe's JIT slow.
      body.push(`for (var kt = ${K4 * 4}u; kt < ${s.kName}; kt++) {`);
      body.push(...step(s, "kt", "", 1).map((l) => "  " + l));
      body.push("}");
    }
  };
  for (const s of segs) loops(s);
  // A pair: the first product's block kept in an array, then the second's in the same accumulators.
  if (p.pair) {
    for (const q of Q) {
      body.push(`var pacc${q}: array<vec4<f32>, ${tm}>;`);
      for (const r of R) body.push(`pacc${q}[${r}] = acc${r}_${q};`, `acc${r}_${q} = vec4<f32>(0.0);`);
    }
    loops({ ...segs[0]!, B: p.pair.b, bF16: !!p.pair.bF16 });
  }
  const shared: SharedRows | undefined = sg > 0 ? { sg, laneRows: J.map((j) => `lr${j}`), broadcast } : undefined;
  const cols = C.map((c) => `(n0 + ${c}u)`);
  // The thread's tn biases, loaded once (clamped like the B columns) for all its rows.
  const biasOf = p.bias ? (c: number) => `bias_c${c}` : undefined;
  const loadBias = () => {
    if (p.bias) for (const c of C) body.push(`let bias_c${c} = ${names.bias}[bn${c}];`);
  };
  // On CPU adapters the stores are a loop over the block's rows (each row's accumulators copied
  // into arrays first), where the epilogue allows it: llvmpipe's JIT time grows with every load
  // and store written out, and tm rows of them unrolled took about half of a plain kernel's
  // compile (306 x 64 x 64: 444 against 202 ms; with a residual 966 against 270 ms) for no
  // measurable speed. The bound is read at run time so the loop is not unrolled again.
  const looped = caps.isCpu && (!p.epilogue || p.epilogue.looped) ? { epilogue: p.epilogue?.looped } : undefined;
  if (looped) {
    const at = { col: (i: string) => `(n0 + ${i})`, laneRow: (g: string) => `min(m0 + (${g}) * ${sg}u + sl, M - 1u)` };
    if (looped.epilogue?.prepare) body.push(looped.epilogue.prepare(cols, shared, at));
    // The biases by a loop too (one load written out instead of tn).
    if (p.bias) {
      body.push(`var biasv: array<f32, ${tn}>;`, `for (var c = 0u; c < select(${tn}u, 0u, arrayLength(&${names.bias}) == 0u); c++) { biasv[c] = ${names.bias}[min(n0 + c, N - 1u)]; }`);
      for (const c of C) body.push(`let bias_c${c} = biasv[${c}];`);
    }
    for (const q of Q) {
      body.push(`var accs${q}: array<vec4<f32>, ${tm}>;`);
      for (const r of R) body.push(`accs${q}[${r}] = acc${r}_${q};`);
    }
    body.push(`let rows_n = select(${tm}u, 0u, arrayLength(&${names.c}) == 0u);`);
    body.push(`for (var r = 0u; r < rows_n; r++) {`, `  let m = m0 + r;`, `  if (m >= M) { break; }`);
    // Row r of the block is on lane r % sg, in lane row group ⌊r / sg⌋ (as `broadcast` above).
    const shuffle = (valueOf: (g: number) => string): string => {
      let v = valueOf(0);
      for (const j of J.slice(1)) v = `select(${v}, ${valueOf(j)}, r >= ${j * sg}u)`;
      return `subgroupShuffle(${v}, r % ${sg}u)`;
    };
    if (looped.epilogue?.row) body.push(looped.epilogue.row("m", cols, sg > 0 ? shuffle : undefined));
    for (const q of Q) {
      body.push(`  let av${q} = accs${q}[r];`);
      if (p.pair) {
        body.push(...pairStores(p.pair, `pacc${q}[r]`, `av${q}`, q).map((l) => "  " + l));
        continue;
      }
      if (cVec) {
        body.push(`  if (n0 + ${4 * q}u < N) {`, `    ${loopedStoreVec4(p, looped.epilogue, `av${q}`, "m", `(n0 + ${4 * q}u)`, 4 * q, biasOf)}`, "  }");
      } else {
        for (const j of I4) {
          const n = `(n0 + ${4 * q + j}u)`;
          body.push(`  if (${n} < N) { ${loopedStoreScalar(p, looped.epilogue, `av${q}[${j}]`, "m", n, 4 * q + j, biasOf)} }`);
        }
      }
    }
    body.push("}");
  }
  if (!looped && p.epilogue?.prepare) body.push(p.epilogue.prepare(R.map((r) => `(m0 + ${r}u)`), cols, shared));
  if (!looped) loadBias();
  // Stores: rows are uniform (unless narrow), so the row test costs nothing per lane.
  for (const r of looped ? [] : R) {
    if (shared && p.epilogue?.prepareRow) body.push(p.epilogue.prepareRow(r, cols, shared));
    body.push(`if (m0 + ${r}u < M) {`, `  let m = m0 + ${r}u;`);
    for (const q of Q) {
      if (cVec) {
        body.push(`  if (n0 + ${4 * q}u < N) {`, ...storeVec4(p, `acc${r}_${q}`, "m", `(n0 + ${4 * q}u)`, { row: r, col: 4 * q }, biasOf).map((l) => "    " + l), "  }");
      } else {
        for (const j of I4) {
          const n = `(n0 + ${4 * q + j}u)`;
          body.push(`  if (${n} < N) { ${storeScalar(p, `acc${r}_${q}[${j}]`, "m", n, { row: r, col: 4 * q + j }, biasOf)} }`);
        }
      }
    }
    body.push("}");
  }

  // The pair's three stores of the block's columns 4q..4q+3 at row m: C from `first`, C2 from
  // `second` (vec4 values), C3 their combination.
  function pairStores(pair: MatmulPair, first: string, second: string, q: number): string[] {
    const c = names.c;
    if (cVec) {
      const i = `(m * N + n0 + ${4 * q}u) / 4u`;
      return [`if (n0 + ${4 * q}u < N) {`, `  let pv = ${first};`, `  ${c}[${i}] = pv;`, `  ${pair.c}[${i}] = ${second};`, `  ${pair.combined}[${i}] = ${pair.vec4("pv", second)};`, "}"];
    }
    return [
      `let pv${q} = ${first};`,
      ...I4.map((j) => {
        const n = `(n0 + ${4 * q + j}u)`;
        const i = `m * N + ${n}`;
        return `if (${n} < N) { ${c}[${i}] = pv${q}[${j}]; ${pair.c}[${i}] = ${second}[${j}]; ${pair.combined}[${i}] = ${pair.scalar(`pv${q}[${j}]`, `${second}[${j}]`)}; }`;
      }),
    ];
  }

  const [gy, gz] = splitGrid(Math.ceil(M / (tm * RL)), caps);
  const bindings = matmulBindings(p, { a: segs[0]!.aVec, b: segs[0]!.bVec, c: cVec }, segs.slice(1).map((s) => ({ a: s.aVec, b: s.bVec })));
  const label = p.label ?? `matmul_register_${M}x${N}x${K}_${p.aLayout}_${p.bLayout}`;
  const parts: ModuleParts = {
    enables: enablesFor(caps, segs.some((s) => s.bF16) || !!p.pair?.bF16, sg > 0),
    bindings,
    consts: { M, N, K, ...Object.fromEntries(segs.slice(1).map((s) => [s.kName, s.K])), GRID_Y: gy },
    helpers: [p.aMap?.helpers, p.pair?.helpers, p.epilogue?.helpers].filter((h) => h).join("\n"),
    entryPoint: "main",
    workgroupSize: [wg, 1, 1],
    params: [
      "@builtin(workgroup_id) wid: vec3<u32>",
      "@builtin(local_invocation_id) lid: vec3<u32>",
      ...(sg > 0 ? ["@builtin(subgroup_invocation_id) sl: u32"] : []),
    ],
    body: body.join("\n"),
  };
  return {
    label,
    wgsl: renderModule(parts),
    parts,
    entryPoint: "main",
    workgroupSize: [wg, 1, 1],
    dispatch: [narrow ? 1 : Math.ceil(N / (wg * tn)), gy, gz],
    bindings,
    flops: 2 * M * N * segs.reduce((k, s) => k + s.K, 0) * (p.pair ? 2 : 1),
  };
}

/** One product of the sum: its operands' names, K, whether B is f16, and how it is read. */
interface Seg {
  A: string;
  B: string;
  K: number;
  /** The WGSL constant holding K. */
  kName: string;
  /** Prefix of the term's K-dependent offsets. */
  tag: string;
  bF16: boolean;
  bLayout: BLayout;
  unroll: boolean;
  aVec: boolean;
  bVec: boolean;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
