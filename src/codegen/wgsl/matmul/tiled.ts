// Workgroup-memory tiled matmul: the workgroup stages a bk-deep slice of A (bm rows) and B (bn
// columns) in workgroup memory, then each thread accumulates tm×tn outputs from it. A thread's
// outputs are strided by the thread grid (rows ty + TY·i, columns tx + TX·j), so neighbouring
// lanes read neighbouring words of the tile. GPUs want this form: each operand element is read
// from device memory once per tile instead of once per thread.

import type { DeviceCaps } from "../caps.js";
import type { KernelSpec } from "../kernel.js";
import { enablesFor, renderModule, splitGrid } from "../render.js";
import { matmulBindings, operandNames, storeScalar } from "./common.js";
import { checkProblem, type MatmulProblem, type TiledTuning } from "./problem.js";

export const DEFAULT_TILED_TUNING: TiledTuning = { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };

export function tiledMatmul(p: MatmulProblem, caps: DeviceCaps, t: TiledTuning = DEFAULT_TILED_TUNING): KernelSpec {
  checkProblem(p);
  if (p.terms?.length) throw new Error("tiled matmul: summed terms are a register-variant form; run each term as its own accumulating matmul");
  if (p.aMap) throw new Error("tiled matmul: a mapped A is a register-variant form; write the mapped A first");
  const { M, N, K } = p;
  const { bm, bn, bk, tm, tn } = t;
  const TX = bn / tn;
  const TY = bm / tm;
  const threads = TX * TY;
  if (!Number.isInteger(TX) || !Number.isInteger(TY)) throw new Error(`tiled matmul: tile ${bm}x${bn} not divisible by ${tm}x${tn}`);
  if ((bk * bm) % threads !== 0 || (bk * bn) % threads !== 0) throw new Error(`tiled matmul: ${threads} threads cannot split the ${bk}-deep tiles evenly`);
  if (threads > caps.maxInvocationsPerWorkgroup || TX > caps.maxWorkgroupSizeX || TY > caps.maxWorkgroupSizeY)
    throw new Error(`tiled matmul: ${TX}x${TY} threads exceed the device`);
  const smem = (bk * bm + bk * bn) * 4;
  if (smem > caps.maxWorkgroupStorageBytes) throw new Error(`tiled matmul: ${smem} bytes of workgroup memory exceed the device's ${caps.maxWorkgroupStorageBytes}`);

  const names = operandNames(p);
  const A = names.a;
  const B = names.b;
  const bRead = (idx: string) => (p.bF16 ? `f32(${B}[${idx}])` : `${B}[${idx}]`);
  // Loads run along whichever dimension is contiguous in memory.
  const aIdx = p.aLayout === "mk" ? { kk: `e % ${bk}u`, mm: `e / ${bk}u` } : { kk: `e / ${bm}u`, mm: `e % ${bm}u` };
  const bIdx = p.bLayout === "nk" ? { kk: `e % ${bk}u`, nn: `e / ${bk}u` } : { kk: `e / ${bn}u`, nn: `e % ${bn}u` };
  const aAddr = p.aLayout === "mk" ? "gm * K + gk" : "gk * M + gm";
  const bAddr = p.bLayout === "nk" ? "gn * K + gk" : "gk * N + gn";
  const R = range(tm);
  const C = range(tn);

  const body: string[] = [
    `let tid = lid.y * ${TX}u + lid.x;`,
    `let m0 = (wid.y + wid.z * GRID_Y) * ${bm}u;`,
    `let n0 = wid.x * ${bn}u;`,
  ];
  for (const r of R) for (const c of C) body.push(`var acc${r}_${c} = 0.0f;`);
  body.push(`for (var k0 = 0u; k0 < K; k0 += ${bk}u) {`);
  body.push(`  for (var e = tid; e < ${bk * bm}u; e += ${threads}u) {`);
  body.push(`    let kk = ${aIdx.kk}; let mm = ${aIdx.mm};`);
  body.push(`    let gm = m0 + mm; let gk = k0 + kk;`);
  body.push(`    var v = 0.0f;`);
  body.push(`    if (gm < M && gk < K) { v = ${A}[${aAddr}]; }`);
  body.push(`    tileA[kk * ${bm}u + mm] = v;`);
  body.push(`  }`);
  body.push(`  for (var e = tid; e < ${bk * bn}u; e += ${threads}u) {`);
  body.push(`    let kk = ${bIdx.kk}; let nn = ${bIdx.nn};`);
  body.push(`    let gn = n0 + nn; let gk = k0 + kk;`);
  body.push(`    var v = 0.0f;`);
  body.push(`    if (gn < N && gk < K) { v = ${bRead(bAddr)}; }`);
  body.push(`    tileB[kk * ${bn}u + nn] = v;`);
  body.push(`  }`);
  body.push(`  workgroupBarrier();`);
  body.push(`  for (var kk = 0u; kk < ${bk}u; kk++) {`);
  for (const r of R) body.push(`    let a${r} = tileA[kk * ${bm}u + lid.y + ${r * TY}u];`);
  for (const c of C) body.push(`    let b${c} = tileB[kk * ${bn}u + lid.x + ${c * TX}u];`);
  for (const r of R) for (const c of C) body.push(`    acc${r}_${c} += a${r} * b${c};`);
  body.push(`  }`);
  body.push(`  workgroupBarrier();`);
  body.push(`}`);
  if (p.epilogue?.prepare) body.push(p.epilogue.prepare(R.map((r) => `(m0 + lid.y + ${r * TY}u)`), C.map((c) => `(n0 + lid.x + ${c * TX}u)`)));
  for (const r of R) {
    body.push(`{`, `  let m = m0 + lid.y + ${r * TY}u;`);
    for (const c of C) {
      const n = `(n0 + lid.x + ${c * TX}u)`;
      body.push(`  if (m < M && ${n} < N) { ${storeScalar(p, `acc${r}_${c}`, "m", n, { row: r, col: c })} }`);
    }
    body.push(`}`);
  }

  const [gy, gz] = splitGrid(Math.ceil(M / bm), caps);
  const bindings = matmulBindings(p, { a: false, b: false, c: false });
  const label = p.label ?? `matmul_tiled_${M}x${N}x${K}_${p.aLayout}_${p.bLayout}`;
  const wgsl = renderModule({
    enables: enablesFor(caps, !!p.bF16),
    bindings,
    consts: { M, N, K, GRID_Y: gy },
    workgroupVars: [`tileA: array<f32, ${bk * bm}>`, `tileB: array<f32, ${bk * bn}>`],
    helpers: p.epilogue?.helpers ?? "",
    entryPoint: "main",
    workgroupSize: [TX, TY, 1],
    params: ["@builtin(workgroup_id) wid: vec3<u32>", "@builtin(local_invocation_id) lid: vec3<u32>"],
    body: body.join("\n"),
  });
  return {
    label,
    wgsl,
    entryPoint: "main",
    workgroupSize: [TX, TY, 1],
    dispatch: [Math.ceil(N / bn), gy, gz],
    bindings,
    flops: 2 * M * N * K,
  };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
