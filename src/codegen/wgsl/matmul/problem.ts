// One matmul family for every linear layer: C[M,N] = op(A)·op(B) with f32 accumulation. The
// layouts say how each operand is stored, so forward (x·Wᵀ or x·W), dX (dY·W) and dW (dYᵀ·X)
// are all the same kernel with different layouts and no transposed copies in memory.

export type ALayout = "mk" /* A stored [M,K] */ | "km" /* A stored [K,M] */;
export type BLayout = "nk" /* B stored [N,K]: C = A·Bᵀ (torch Linear weight) */ | "kn" /* B stored [K,N] */;

export interface EpilogueBinding {
  name: string;
  type: string;
  access: "read" | "read_write";
  elem: "f32" | "f16" | "u32";
}

/** Where an output element sits in the thread's block: its `row`-th row and `col`-th column. */
export interface BlockPos {
  row: number;
  col: number;
}

/**
 * How a kernel with rows shared across a subgroup (register variant, `sg`) lets an epilogue share
 * its per-row loads the same way: this lane loads rows `laneRows` (clamped to M − 1), and row i of
 * the block is on lane i % sg of the lane rows' group ⌊i / sg⌋.
 */
export interface SharedRows {
  sg: number;
  laneRows: string[];
  /** A WGSL expression broadcasting `value` (loaded for lane rows group `group`) to row `row`. */
  broadcast: (value: string, row: number) => string;
}

/** A hook for fused kernels: extra bindings and an expression applied to every output element. */
export interface Epilogue {
  bindings?: EpilogueBinding[];
  helpers?: string;
  /**
   * Statements run once per thread before its stores, given the u32 expressions of the rows and
   * columns the thread owns (possibly past M or N: clamp before loading). Lets an epilogue load
   * what a whole row or column shares once instead of once per element.
   */
  prepare?: (rows: string[], cols: string[], shared?: SharedRows) => string;
  /**
   * Statements run before row `row`'s stores (only where `prepare` got `shared`), so values
   * built per row from the shared loads need not all be live at once.
   */
  prepareRow?: (row: number, cols: string[], shared: SharedRows) => string;
  /**
   * An f32 WGSL expression of `v` (accumulator after alpha and bias) at row `m`, column `n` (u32),
   * which is element `at` of the thread's block (the indices into prepare's rows and cols).
   */
  apply: (v: string, m: string, n: string, at: BlockPos) => string;
  /**
   * The same epilogue for stores written as a loop over the thread's rows, which the register
   * variant uses on CPU adapters when the epilogue offers it (every load and store written out
   * costs llvmpipe's JIT time: tm unrolled rows of them took most of a kernel's compile).
   */
  looped?: LoopedEpilogue;
  /**
   * A second output stored beside C at the same index (an epilogue binding, read_write): the f32
   * expression of `v` (after alpha and bias, before `apply`) at (m, n), element `at` of the block.
   */
  second?: { name: string; apply: (v: string, m: string, n: string, at: BlockPos) => string };
}

/**
 * Run-time forms of the thread's columns and lane rows, so an epilogue can load them in a loop
 * (one load written out instead of one per value): `col(i)` is column i of the thread's block
 * (u32, possibly past N: clamp it), `laneRow(g)` the lane's row of lane-row group g (clamped like
 * SharedRows.laneRows).
 */
export interface LoopedIndex {
  col: (i: string) => string;
  laneRow: (g: string) => string;
}

/** An epilogue for a store loop whose row is a run-time value (see Epilogue.looped). */
export interface LoopedEpilogue {
  /**
   * Statements run once per thread before the loop, given the thread's columns (u32 expressions)
   * and, where rows are shared across a subgroup, the lanes' own rows (as for prepare).
   */
  prepare?: (cols: string[], shared: SharedRows | undefined, at: LoopedIndex) => string;
  /**
   * Statements at the top of a row's iteration: `m` the row (u32, below M), `cols` as in prepare;
   * with shared rows, `shuffle` hands every lane the value that the lane holding row `m` has for
   * it (given the value's expression per lane-row group, as SharedRows.laneRows are numbered).
   */
  row?: (m: string, cols: string[], shuffle?: (valueOfGroup: (group: number) => string) => string) => string;
  /** An f32 expression of `v` (after alpha and bias) at row `m`, column `n`: the block's column `col`. */
  apply: (v: string, m: string, n: string, col: number) => string;
  /** The second output's value (Epilogue.second), as `apply`. */
  second?: (v: string, m: string, n: string, col: number) => string;
}

/**
 * A further product summed into the same accumulators: C = A·op(B) + Σ A_t·op(B_t), every A_t
 * [M,K_t] and B_t in A's layout, with its own K_t (B may be stored either way). Several gradients of one value
 * (dX of the projections that read it) then take one pass over the output instead of one each
 * plus their sum. Bound after C, in order, as `a` then `b` per term.
 */
export interface MatmulTerm {
  a: string;
  b: string;
  K: number;
  bF16?: boolean;
  /** B's layout when it differs from the first product's (a GPT-2 Conv1D weight beside a LoRA A). */
  bLayout?: BLayout;
}

/**
 * A read through an elementwise map with a second operand stored like A: the product uses
 * f(A(m,k), U(m,k)) where it would read A(m,k) (SwiGLU's silu(gate)·up feeding the down
 * projection, so the activation is never written). `scalar` and `vec4` print f for f32 and vec4
 * values; `helpers` holds the functions they call.
 */
export interface AMap {
  with: string;
  helpers: string;
  scalar: (a: string, u: string) => string;
  vec4: (a: string, u: string) => string;
}

/**
 * A second product of the same A with a second B of the first's shape and layout, C2 = A·op(B2),
 * and a third output combining the two elementwise, C3 = f(C, C2): SwiGLU's gate and up
 * projections with the activation silu(gate)·up, from one pass over the input rows. The thread
 * computes its block of C, keeps it, then its block of C2, and stores all three. `vec4` and
 * `scalar` print f of (C, C2) for vec4 and f32 values; `helpers` holds the functions they call.
 * Register variant on CPU adapters only (its stores are a loop over rows), with no bias, alpha,
 * accumulate, terms, map or epilogue. Bound after C, in order: B2, C2, C3.
 */
export interface MatmulPair {
  b: string;
  bF16?: boolean;
  c: string;
  combined: string;
  helpers: string;
  scalar: (c: string, c2: string) => string;
  vec4: (c: string, c2: string) => string;
}

export interface MatmulProblem {
  M: number;
  N: number;
  K: number;
  /** Products added to the first in the same accumulators (register variant only). */
  terms?: MatmulTerm[];
  /** A read through a map (register variant only, no terms). */
  aMap?: AMap;
  /** A second product of A and a combination of both (MatmulPair). */
  pair?: MatmulPair;
  aLayout: ALayout;
  bLayout: BLayout;
  /** B is stored as f16 (frozen weights); needs shader-f16. */
  bF16?: boolean;
  /** Add bias[n]. */
  bias?: boolean;
  /** Scale the product before bias/epilogue. */
  alpha?: number;
  /** C += result instead of C = result (gradient accumulation). */
  accumulate?: boolean;
  epilogue?: Epilogue;
  /** WGSL names of the operands (defaults a, b, c, bias). */
  names?: { a?: string; b?: string; c?: string; bias?: string };
  label?: string;
}

export type MatmulVariant = "register" | "tiled";
export const MATMUL_VARIANTS: readonly MatmulVariant[] = ["register", "tiled"];

/** Register-blocked: each thread keeps tm×tn outputs; rows come from the workgroup id. */
export interface RegisterTuning {
  tm: number;
  /** Columns per thread, a multiple of 4. */
  tn: number;
  /** Threads per workgroup, all along N. */
  wg: number;
  /**
   * Share the tm rows across a subgroup of this many lanes: each lane loads tm/sg of them and
   * subgroupBroadcast hands every row to every lane. Needs the device's fixed subgroup size;
   * tm a multiple of sg. Absent or 0: every lane loads all tm rows itself.
   */
  sg?: number;
}

/** Workgroup-memory tiles bm×bn, stepping K by bk; each thread keeps tm×tn outputs. */
export interface TiledTuning {
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}

export function checkProblem(p: MatmulProblem): void {
  for (const d of ["M", "N", "K"] as const) {
    const v = p[d];
    if (!Number.isInteger(v) || v < 1) throw new Error(`matmul ${d} must be a positive integer, got ${v}`);
  }
  for (const [i, t] of (p.terms ?? []).entries())
    if (!Number.isInteger(t.K) || t.K < 1) throw new Error(`matmul term ${i + 1}: K must be a positive integer, got ${t.K}`);
}
