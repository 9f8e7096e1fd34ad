// What the reference executor passes between ops: flat data plus a concrete shape, symbolic IR
// dimensions (B, T, T+20) evaluated against the run's bindings, and the data-movement loops
// (broadcast, reduce, slice along an axis) that several kernels share.

import type { Dim } from '../../../ir/shape.js';
import type { Floats } from '../floats.js';

export type Data = Floats | Int32Array;

export interface Tensor {
  data: Data;
  shape: number[];
}

export type Bindings = Readonly<Record<string, number>>;

/** Value of an IR dimension (a number or a sum like `T+20`, `2*T-1`) under `env`. */
export function evalDim(d: Dim, env: Bindings): number {
  if (typeof d === 'number') return d;
  const parts = d.replace(/\s+/g, '').match(/[+-]?[^+-]+/g) ?? [];
  let total = 0;
  for (const p of parts) {
    const sign = p.startsWith('-') ? -1 : 1;
    const body = p.replace(/^[+-]/, '');
    const [k, sym] = body.includes('*') ? body.split('*') : /^\d+$/.test(body) ? [body, undefined] : ['1', body];
    if (sym === undefined) total += sign * Number(k);
    else {
      const v = env[sym];
      if (v === undefined) throw new Error(`reference executor: no value for dimension symbol '${sym}'`);
      total += sign * Number(k) * v;
    }
  }
  return total;
}

export const numelOf = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** A zeroed float array of the run's precision. */
export function zeros(f64: boolean, n: number): Floats {
  return f64 ? new Float64Array(n) : new Float32Array(n);
}

export function asFloats(t: Tensor): Floats {
  if (t.data instanceof Int32Array) throw new Error('reference executor: expected a float tensor, got i32');
  return t.data;
}

export function asInts(t: Tensor): Int32Array {
  if (!(t.data instanceof Int32Array)) throw new Error('reference executor: expected an i32 tensor');
  return t.data;
}

/** Row-major strides of `shape`. */
function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** x (shape `from`) repeated to `to` under NumPy broadcasting (trailing axes aligned). */
export function broadcastTo(x: Floats, from: readonly number[], to: readonly number[], f64: boolean): Floats {
  const n = numelOf(to);
  if (from.length === to.length && from.every((d, i) => d === to[i])) return x;
  const out = zeros(f64, n);
  const pad = to.length - from.length;
  const fs = strides(from);
  const ts = strides(to);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let a = 0; a < to.length; a++) {
      const idx = Math.floor(i / ts[a]!) % to[a]!;
      const fa = a - pad;
      if (fa >= 0 && from[fa] !== 1) src += idx * fs[fa]!;
    }
    out[i] = x[src]!;
  }
  return out;
}

/** The sum of x (shape `from`) over the axes that broadcasting to `from` added or stretched from `to`. */
export function sumTo(x: Floats, from: readonly number[], to: readonly number[], f64: boolean): Floats {
  const out = zeros(f64, numelOf(to));
  const pad = from.length - to.length;
  const fs = strides(from);
  const ts = strides(to);
  for (let i = 0; i < x.length; i++) {
    let dst = 0;
    for (let a = pad; a < from.length; a++) {
      const idx = Math.floor(i / fs[a]!) % from[a]!;
      if (to[a - pad] !== 1) dst += idx * ts[a - pad]!;
    }
    out[dst] = out[dst]! + x[i]!;
  }
  return out;
}

/** (outer, axis length, inner) of `shape` around `axis`. */
export function around(shape: readonly number[], axis: number): { outer: number; len: number; inner: number; ax: number } {
  const ax = axis < 0 ? axis + shape.length : axis;
  return { outer: numelOf(shape.slice(0, ax)), len: shape[ax]!, inner: numelOf(shape.slice(ax + 1)), ax };
}

/** dst[..., dstAt + j, ...] = src[..., srcAt + j, ...] for j < count, along one axis. */
export function copyAlong(
  src: Data,
  srcShape: readonly number[],
  srcAt: number,
  dst: Data,
  dstShape: readonly number[],
  dstAt: number,
  count: number,
  axis: number,
): void {
  const s = around(srcShape, axis);
  const d = around(dstShape, axis);
  for (let o = 0; o < s.outer; o++)
    for (let j = 0; j < count; j++) {
      const si = (o * s.len + srcAt + j) * s.inner;
      const di = (o * d.len + dstAt + j) * d.inner;
      for (let k = 0; k < s.inner; k++) dst[di + k] = src[si + k]!;
    }
}

/** A 2-D matrix [r,c] transposed to [c,r]. */
export function transpose2(x: Floats, r: number, c: number, f64: boolean): Floats {
  const out = zeros(f64, r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = x[i * c + j]!;
  return out;
}

/** A stable 32-bit number for a dropout stream name (FNV-1a over its UTF-16 code units). */
export function streamId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A zeroed array for n elements of x's kind: i32 stays i32, floats take the run's precision. */
export function allocLike(x: Data, n: number, f64: boolean): Data {
  return x instanceof Int32Array ? new Int32Array(n) : zeros(f64, n);
}
