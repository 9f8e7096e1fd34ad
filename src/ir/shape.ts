/**
 * Tensor types and the small dimension algebra the shape rules need. Batch and sequence length are
 * unknown at compile time, so a dimension is either a number or a symbolic expression: a sum of
 * symbols with integer coefficients plus a constant (`T`, `T+20`, `2*T-1`). Prompt tuning grows the
 * sequence (`T+20`) and the shifted loss shrinks it again, so sums are all we support; products of
 * symbols never occur in a dimension (reshape compares element counts as monomials instead).
 */

export type DType = "f32" | "f16" | "i32";
export const DTYPES: readonly DType[] = ["f32", "f16", "i32"];

/** A number, or a canonical linear expression over symbols such as `B`, `T`, `T+20`. */
export type Dim = number | string;
export type Shape = Dim[];

export interface TensorType {
  dtype: DType;
  shape: Shape;
}

/** A linear form: coefficient per symbol plus a constant. */
interface Lin {
  terms: Map<string, number>;
  c: number;
}

const TERM = /^([+-]?)(?:(\d+)\*)?([A-Za-z_][A-Za-z0-9_]*)$|^([+-]?)(\d+)$/;

function parseLin(d: Dim): Lin | undefined {
  if (typeof d === "number") return Number.isInteger(d) ? { terms: new Map(), c: d } : undefined;
  const src = d.replace(/\s+/g, "");
  if (src === "") return undefined;
  const parts = src.match(/[+-]?[^+-]+/g);
  if (!parts || parts.join("") !== src) return undefined;
  const lin: Lin = { terms: new Map(), c: 0 };
  for (const p of parts) {
    const m = TERM.exec(p);
    if (!m) return undefined;
    if (m[3] !== undefined) {
      const k = (m[1] === "-" ? -1 : 1) * (m[2] !== undefined ? Number(m[2]) : 1);
      lin.terms.set(m[3], (lin.terms.get(m[3]) ?? 0) + k);
    } else {
      lin.c += (m[4] === "-" ? -1 : 1) * Number(m[5]);
    }
  }
  return lin;
}

function formatLin(l: Lin): Dim {
  const syms = [...l.terms.entries()].filter(([, k]) => k !== 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (syms.length === 0) return l.c;
  let out = "";
  for (const [s, k] of syms) {
    const mag = Math.abs(k);
    const body = mag === 1 ? s : `${mag}*${s}`;
    out += k < 0 ? `-${body}` : out === "" ? body : `+${body}`;
  }
  if (l.c > 0) out += `+${l.c}`;
  if (l.c < 0) out += `${l.c}`;
  return out;
}

/** True when `d` is a non-negative integer or a well-formed symbolic expression. */
export function isDim(d: unknown): d is Dim {
  if (typeof d === "number") return Number.isInteger(d) && d >= 0;
  return typeof d === "string" && parseLin(d) !== undefined;
}

/** The canonical spelling of a dimension (`20+T` becomes `T+20`, `T-T+3` becomes 3). */
export function normDim(d: Dim): Dim {
  const l = parseLin(d);
  if (!l) throw new Error(`bad dimension '${d}'`);
  return formatLin(l);
}

export function dimEq(a: Dim, b: Dim): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b;
  const la = parseLin(a);
  const lb = parseLin(b);
  if (!la || !lb) return false;
  return formatLin(sub(la, lb)) === 0;
}

function sub(a: Lin, b: Lin): Lin {
  const terms = new Map(a.terms);
  for (const [s, k] of b.terms) terms.set(s, (terms.get(s) ?? 0) - k);
  return { terms, c: a.c - b.c };
}

export function dimAdd(a: Dim, b: Dim): Dim {
  const la = parseLin(a);
  const lb = parseLin(b);
  if (!la || !lb) throw new Error(`bad dimension in '${a}' + '${b}'`);
  const terms = new Map(la.terms);
  for (const [s, k] of lb.terms) terms.set(s, (terms.get(s) ?? 0) + k);
  return formatLin({ terms, c: la.c + lb.c });
}

export function dimSub(a: Dim, b: Dim): Dim {
  const la = parseLin(a);
  const lb = parseLin(b);
  if (!la || !lb) throw new Error(`bad dimension in '${a}' - '${b}'`);
  return formatLin(sub(la, lb));
}

/** A dimension known to be negative (a number below 0, or an expression that is only a negative constant). */
export function dimNegative(d: Dim): boolean {
  const n = normDim(d);
  return typeof n === "number" && n < 0;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i] as Dim));
}

export function formatShape(s: Shape): string {
  return `[${s.map((d) => String(d)).join(",")}]`;
}

export function formatType(t: TensorType): string {
  return `${t.dtype}${formatShape(t.shape)}`;
}

/**
 * Element count as a monomial: the product of the numeric dims and the sorted list of symbolic
 * ones. Two shapes hold the same number of elements for every binding of the symbols when these agree.
 */
export function elementKey(s: Shape): string {
  let n = 1;
  const syms: string[] = [];
  for (const d of s) {
    const nd = normDim(d);
    if (typeof nd === "number") n *= nd;
    else syms.push(`(${nd})`);
  }
  if (n === 0) return "0";
  syms.sort();
  return [String(n), ...syms].join("*");
}

/** Element count of a fully numeric shape (parameters). */
export function numel(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

/** NumPy broadcasting of two shapes, aligned at the trailing end. */
export function broadcastShapes(a: Shape, b: Shape): Shape | string {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : (a[i - (n - a.length)] as Dim);
    const db = i < n - b.length ? 1 : (b[i - (n - b.length)] as Dim);
    if (dimEq(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else return `cannot broadcast ${formatShape(a)} with ${formatShape(b)}`;
  }
  return out;
}

export function isFloat(t: DType): boolean {
  return t === "f32" || t === "f16";
}

/** f16 only when every operand is f16: frozen f16 weights meet f32 activations and yield f32. */
export function promote(...ts: DType[]): DType {
  return ts.every((t) => t === "f16") ? "f16" : "f32";
}
