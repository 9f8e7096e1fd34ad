/**
 * Lowerings of the loss family (see types.ts for the contract): causal-LM cross-entropy over logits
 * [B,T,V], row (b,t) scored against labels[b,t+1]. One workgroup per row reads the vocabulary in
 * chunks of the workgroup width with an online max/sum (softmax in f32 with the max subtracted),
 * so any V fits; rows whose target is ignore_index (or the last position) skip the vocabulary.
 * On a CPU adapter one thread owns a row instead (no barriers: each is a coroutine switch there).
 * The mean needs the number of counted tokens, computed on the device by a one-workgroup kernel:
 * after the rows in forward (sum and count of per-row losses in tmp0), before them in backward
 * (g = dloss / count in tmp0). cross_entropy_grad, the two in one (src/passes/fuse.ts), takes
 * the row statistics once for both. Labels outside [0, V) count as ignored; the reference rejects
 * them.
 */
import { input, kernel, load, mapKernel, output, RED_VAR, scratch, wgSum, type BindingDecl } from "../kernels/common.js";
import { sharedLoadLanes } from "../caps.js";
import { registerLowerings } from "./registry.js";
import type { LowerContext, Lowering, TensorArg } from "./types.js";

const ROW_WG = 256;

function shape(ctx: LowerContext): { B: number; T: number; V: number; rows: number; ignore: string; logits: TensorArg } {
  const logits = ctx.inputs[0]!;
  const [B, T, V] = logits.shape as [number, number, number];
  const ig = ctx.attrs["ignore_index"];
  if (typeof ig !== "number" || !Number.isInteger(ig)) throw new Error(`${ctx.op.op}: ignore_index must be an integer`);
  return { B, T, V, rows: B * T, ignore: `${ig}i`, logits };
}

/** Logits a thread takes per step of the serial online max/sum. */
const CHUNK = 8;

/**
 * (max, Σ exp(x − max)) of logits row `off`, by one thread (`lid` unused). Each step takes CHUNK
 * logits, rescales the running sum once to their max and adds their exps: CHUNK + 1 exps for
 * CHUNK logits and no branch on the data (a SIMD thread runs both sides of a divergent branch,
 * which costs two exps a logit).
 */
const rowStatsSerial = (logits: TensorArg, V: number): string => {
  const J = Array.from({ length: CHUNK }, (_, j) => j);
  const x = (i: string): string => load("in0", logits.dtype, i);
  const tree = (xs: string[]): string => (xs.length === 1 ? xs[0]! : `max(${tree(xs.slice(0, xs.length >> 1))}, ${tree(xs.slice(xs.length >> 1))})`);
  const full = Math.floor(V / CHUNK) * CHUNK;
  return `
fn row_stats(off: u32, lid: u32) -> vec2<f32> {
  var m = -3.0e38;
  var s = 0.0;
  for (var v = 0u; v < ${full}u; v = v + ${CHUNK}u) {
${J.map((j) => `    let x${j} = ${x(`off + v + ${j}u`)};`).join("\n")}
    let mb = max(m, ${tree(J.map((j) => `x${j}`))});
    s = s * exp(m - mb) + ${J.map((j) => `exp(x${j} - mb)`).join(" + ")};
    m = mb;
  }
  for (var v = ${full}u; v < V; v = v + 1u) {
    let x = ${x("off + v")};
    let mb = max(m, x);
    s = s * exp(m - mb) + exp(x - mb);
    m = mb;
  }
  return vec2<f32>(m, s);
}`;
};

/** (max, Σ exp(x − max)) of logits row `off`, merged across the workgroup. */
const rowStats = (logits: TensorArg): string => `
fn row_stats(off: u32, lid: u32) -> vec2<f32> {
  var m = -3.0e38;
  var s = 0.0;
  for (var v = lid; v < V; v = v + WG) {
    let x = ${load("in0", logits.dtype, "off + v")};
    if (x > m) { s = s * exp(m - x) + 1.0; m = x; } else { s = s + exp(x - m); }
  }
  red_m[lid] = m;
  red_s[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      let m1 = red_m[lid];
      let m2 = red_m[lid + k];
      let mm = max(m1, m2);
      red_s[lid] = red_s[lid] * exp(m1 - mm) + red_s[lid + k] * exp(m2 - mm);
      red_m[lid] = mm;
    }
    workgroupBarrier();
  }
  let r = vec2<f32>(red_m[0], red_s[0]);
  workgroupBarrier();
  return r;
}`;

/** The row's target label, uniform across the workgroup; IGNORE when the row is not counted. */
const TARGET = `let t = row % T;
if (lid == 0u) {
  var y = IGNORE;
  if (t + 1u < T) { y = in1[row + 1u]; }
  if (y < 0 || y >= i32(V)) { y = IGNORE; }
  label = y;
}
let y = workgroupUniformLoad(&label);
let off = row * V;`;

/** The same for a row one thread owns. */
const TARGET_SERIAL = `let t = row % T;
var y = IGNORE;
if (t + 1u < T) { y = in1[row + 1u]; }
if (y < 0 || y >= i32(V)) { y = IGNORE; }
let off = row * V;`;

/**
 * 1.0 when row r's target is counted, for the count kernels (one thread per row): one label read
 * (clamped in range; the last position's is not counted) and no short-circuit branches.
 */
const COUNTED = `select(0.0, 1.0, (r % T + 1u < T) & (yc != IGNORE) & (yc >= 0) & (yc < i32(V)))`;
const COUNTED_LABEL = "let yc = in1[min(r + 1u, ROWS - 1u)];";

/**
 * A kernel over rows. `body` is written for the workgroup-per-row form: it reads its thread as
 * `LID`, strides the vocabulary by `STEP` and tests `LID == 0u` for once-per-row work; on a CPU
 * adapter those become 0u and 1u and one thread runs the whole row.
 */
function rowKernel(ctx: LowerContext, label: string, bindings: BindingDecl[], body: string): ReturnType<typeof kernel> {
  const s = shape(ctx);
  const consts = { T: s.T, V: s.V, ROWS: s.rows, IGNORE: s.ignore };
  if (ctx.caps.isCpu)
    return mapKernel({
      label: `${label}_${s.rows}x${s.V}_serial`,
      caps: ctx.caps,
      n: s.rows,
      bindings,
      consts,
      helpers: rowStatsSerial(s.logits, s.V),
      body: `let row = i;\n${TARGET_SERIAL}\n${body.replaceAll("LID", "0u").replaceAll("STEP", "1u")}`,
      flops: 4 * s.rows * s.V,
    });
  return kernel({
    label: `${label}_${s.rows}x${s.V}`,
    caps: ctx.caps,
    bindings,
    workgroupSize: ROW_WG,
    groups: s.rows,
    consts,
    workgroupVars: ["red_m: array<f32, WG>", "red_s: array<f32, WG>", "label: i32"],
    helpers: rowStats(s.logits),
    body: `let row = group;\nif (row >= ROWS) { return; }\n${TARGET}\n${body.replaceAll("LID", "lid").replaceAll("STEP", "WG")}`,
    flops: 4 * s.rows * s.V,
  });
}

/**
 * A one-workgroup kernel over all rows; `body` strides rows by WG from `lid` and totals with
 * wg_sum. On a CPU adapter with a fixed subgroup size the workgroup is one subgroup and wg_sum is
 * subgroupAdd: a 256-wide barrier tree there is a coroutine switch per level for each of 32 SIMD
 * slices (about 0.1 ms for a few thousand additions), and without barriers the kernel can share a
 * dispatch with others (program/merge.ts).
 */
function singleKernel(ctx: LowerContext, label: string, bindings: BindingDecl[], body: string): ReturnType<typeof kernel> {
  const s = shape(ctx);
  const sg = sharedLoadLanes(ctx.caps);
  return kernel({
    label: `${label}_${s.rows}${sg ? "_sg" : ""}`,
    caps: ctx.caps,
    bindings,
    workgroupSize: sg || 256,
    groups: 1,
    consts: { T: s.T, V: s.V, ROWS: s.rows, IGNORE: s.ignore },
    ...(sg ? { helpers: "fn wg_sum(v: f32, lid: u32) -> f32 { return subgroupAdd(v); }", subgroups: true } : { workgroupVars: [RED_VAR], helpers: wgSum(bindings[0]!.name) }),
    body,
  });
}

/** The row's log-sum-exp `lse`. */
const ROW_LSE = "let st = row_stats(off, LID);\nlet lse = st.x + log(st.y);";

/** An ignored row's (loss, counted) pair in tmp0. */
const IGNORED_ROW = "if (LID == 0u) { tmp0[2u * row] = 0.0; tmp0[2u * row + 1u] = 0.0; }";

/** A counted row's (loss, counted) pair in tmp0, from its log-sum-exp `lse`. */
const rowLoss = (logits: TensorArg): string => `if (LID == 0u) {
  tmp0[2u * row] = lse - ${load("in0", logits.dtype, "off + u32(y)")};
  tmp0[2u * row + 1u] = 1.0;
}`;

/** The mean of the counted rows' losses (tmp0's pairs) into out<outIndex>[0]. */
function meanKernel(ctx: LowerContext, outIndex: number): ReturnType<typeof kernel> {
  const out = `out${outIndex}`;
  return singleKernel(
    ctx,
    "cross_entropy_mean",
    [scratch(0), output(outIndex, "f32")],
    `var s = 0.0;
var c = 0.0;
for (var r = lid; r < ROWS; r = r + WG) { s = s + tmp0[2u * r]; c = c + tmp0[2u * r + 1u]; }
let total = wg_sum(s, lid);
let count = wg_sum(c, lid);
if (lid == 0u) {
  // 0/0 is NaN, as torch's mean over no tokens; spelled out since WGSL leaves it unspecified.
  var nanBits = 0x7fc00000u;
  ${out}[0] = select(total / count, bitcast<f32>(nanBits), count == 0.0);
}`,
  );
}

/** g = dloss / count into tmp<gSlot>[0] (0 when no row is counted), from the labels (in1) and dloss (in2). */
function countKernel(ctx: LowerContext, gSlot: number): ReturnType<typeof kernel> {
  const dloss = ctx.inputs[2]!;
  const g = `tmp${gSlot}`;
  return singleKernel(
    ctx,
    "cross_entropy_bwd_count",
    [input(1, "i32"), input(2, dloss.dtype), scratch(gSlot)],
    `var c = 0.0;
for (var r = lid; r < ROWS; r = r + WG) {
  ${COUNTED_LABEL}
  c = c + ${COUNTED};
}
let count = wg_sum(c, lid);
if (lid == 0u) { ${g}[0] = select(0.0, ${load("in2", dloss.dtype, "0u")} / count, count > 0.0); }`,
  );
}

/** dlogits of row `off` into `out` from its log-sum-exp `lse` and g = dloss / count in `g`[0]. */
const rowGrad = (logits: TensorArg, out: string, g: string): string => `let g = ${g}[0];
for (var v = LID; v < V; v = v + STEP) {
  let p = g * exp(${load("in0", logits.dtype, "off + v")} - lse);
  ${out}[off + v] = select(p, p - g, v == u32(y));
}`;

const crossEntropy: Lowering = (ctx) => {
  const s = shape(ctx);
  const rows = rowKernel(
    ctx,
    "cross_entropy_rows",
    [input(0, s.logits.dtype), input(1, "i32"), scratch(0)],
    `if (y == IGNORE) {
  ${IGNORED_ROW}
  return;
}
${ROW_LSE}
${rowLoss(s.logits)}`,
  );
  return { kernels: [rows, meanKernel(ctx, 0)], scratch: [8 * s.rows] };
};

const crossEntropyBackward: Lowering = (ctx) => {
  const s = shape(ctx);
  const rows = rowKernel(
    ctx,
    "cross_entropy_bwd_rows",
    [input(0, s.logits.dtype), input(1, "i32"), scratch(0), output(0, "f32")],
    `if (y == IGNORE) {
  for (var v = LID; v < V; v = v + STEP) { out0[off + v] = 0.0; }
  return;
}
${ROW_LSE}
${rowGrad(s.logits, "out0", "tmp0")}`,
  );
  return { kernels: [countKernel(ctx, 0), rows], scratch: [4] };
};

/**
 * cross_entropy_grad (the fuse pass's loss with its backward): g first, then one pass per row
 * writing its loss pair and its dlogits from one set of statistics, then the mean. The same
 * arithmetic as the two ops' kernels, so the results are theirs bit for bit.
 */
const crossEntropyGrad: Lowering = (ctx) => {
  const s = shape(ctx);
  const rows = rowKernel(
    ctx,
    "cross_entropy_grad_rows",
    [input(0, s.logits.dtype), input(1, "i32"), scratch(0), scratch(1), output(1, "f32")],
    `if (y == IGNORE) {
  ${IGNORED_ROW}
  for (var v = LID; v < V; v = v + STEP) { out1[off + v] = 0.0; }
  return;
}
${ROW_LSE}
${rowLoss(s.logits)}
${rowGrad(s.logits, "out1", "tmp1")}`,
  );
  return { kernels: [countKernel(ctx, 1), rows, meanKernel(ctx, 0)], scratch: [8 * s.rows, 4] };
};

registerLowerings({ cross_entropy: crossEntropy, cross_entropy_backward: crossEntropyBackward, cross_entropy_grad: crossEntropyGrad });
