// Where AdaLoRA's rank allocation keeps its state on the device, as plain data. Per adapted
// matrix one EMA buffer holds, for each part in the order A [r,in], E [r], B [out,r], the
// importance EMA Ī of every element followed by the uncertainty EMA Ū: part p occupies
// [at, at + 2·count) with Ī at `at` and Ū at `at + count`. The triplet scores of all matrices
// share one buffer and the keep-mask another, matrix k's r entries starting at `scoreAt`. Every
// start is a multiple of 64 elements, so each range binds at the 256-byte storage offset alignment
// and a kernel's text depends only on sizes (same-shaped matrices share pipelines). The gaps
// between score segments hold +∞, which no score is below, so counting over the whole buffer
// counts only real scores.

export type AllocPart = "A" | "E" | "B";
export const ALLOC_PARTS: readonly AllocPart[] = ["A", "E", "B"];

/** Elements per 256 bytes of f32/u32: the storage binding offset alignment. */
export const SEGMENT_ALIGN = 64;

export interface AllocMatrixShape {
  r: number;
  inF: number;
  outF: number;
}

export interface EmaRange {
  /** First element of Ī in the matrix's EMA buffer; Ū follows at `at + count`. */
  at: number;
  count: number;
}

export interface AllocMatrixLayout {
  shape: AllocMatrixShape;
  parts: Record<AllocPart, EmaRange>;
  /** Elements of the matrix's EMA buffer. */
  emaElements: number;
  /** First entry of the matrix's triplets in the score and keep buffers. */
  scoreAt: number;
}

export interface AllocLayout {
  matrices: AllocMatrixLayout[];
  /** Entries of the score and keep buffers, gaps included. */
  scoreElements: number;
  /** Triplets over all matrices (PEFT's init_bgt). */
  triplets: number;
}

const align = (n: number): number => Math.ceil(n / SEGMENT_ALIGN) * SEGMENT_ALIGN;

/** Elements of one part of a matrix: A [r,in], E [r], B [out,r]. */
export function partCount(s: AllocMatrixShape, part: AllocPart): number {
  return part === "A" ? s.r * s.inF : part === "E" ? s.r : s.outF * s.r;
}

export function allocLayout(shapes: readonly AllocMatrixShape[]): AllocLayout {
  let scoreAt = 0;
  const matrices = shapes.map(({ r, inF, outF }) => {
    const shape = { r, inF, outF };
    for (const [k, v] of Object.entries(shape)) if (!Number.isInteger(v) || v < 1) throw new Error(`adalora allocation: ${k} = ${v}`);
    let at = 0;
    const parts = {} as Record<AllocPart, EmaRange>;
    for (const p of ALLOC_PARTS) {
      const count = partCount(shape, p);
      parts[p] = { at, count };
      at = align(at + 2 * count);
    }
    const m: AllocMatrixLayout = { shape, parts, emaElements: at, scoreAt };
    scoreAt = align(scoreAt + shape.r);
    return m;
  });
  return { matrices, scoreElements: Math.max(1, scoreAt), triplets: shapes.reduce((n, s) => n + s.r, 0) };
}
