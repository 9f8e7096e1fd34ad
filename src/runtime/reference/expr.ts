// A tiny scalar expression language for the elementwise table: each op's forward and derivative
// is written once as a tree, which this file evaluates on the CPU and a code generator can print
// as WGSL (every function here has a direct WGSL spelling except erf, which needs a polynomial).
// Variables: a, b (inputs), y (forward output), dy (incoming gradient) and attribute names.

export type Fn = 'add' | 'sub' | 'mul' | 'div' | 'neg' | 'max' | 'exp' | 'tanh' | 'erf' | 'step';

export type Expr =
  | { kind: 'var'; name: string }
  | { kind: 'const'; value: number }
  | { kind: 'call'; fn: Fn; args: Expr[] };

export const v = (name: string): Expr => ({ kind: 'var', name });
export const c = (value: number): Expr => ({ kind: 'const', value });
const call = (fn: Fn, ...args: Expr[]): Expr => ({ kind: 'call', fn, args });
export const add = (x: Expr, y: Expr): Expr => call('add', x, y);
export const sub = (x: Expr, y: Expr): Expr => call('sub', x, y);
export const mul = (...xs: Expr[]): Expr => xs.reduce((p, q) => call('mul', p, q));
export const div = (x: Expr, y: Expr): Expr => call('div', x, y);
export const neg = (x: Expr): Expr => call('neg', x);
export const max = (x: Expr, y: Expr): Expr => call('max', x, y);
export const exp = (x: Expr): Expr => call('exp', x);
export const tanh = (x: Expr): Expr => call('tanh', x);
export const erf = (x: Expr): Expr => call('erf', x);
/** Heaviside: 1 where x > 0, else 0 (WGSL: select(0.0, 1.0, x > 0.0)). */
export const step = (x: Expr): Expr => call('step', x);

/** erf to about 1e-14: Maclaurin series below 2.5, the erfc continued fraction above. */
export function erfValue(x: number): number {
  if (x < 0) return -erfValue(-x);
  if (x < 2.5) {
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = x;
  for (let n = 160; n >= 1; n--) f = x + n / 2 / f;
  return 1 - Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

export type Compiled = (vals: ArrayLike<number>) => number;

/** Compiles `e` into a closure reading variables from `vals` in the order of `names`. */
export function compileExpr(e: Expr, names: readonly string[]): Compiled {
  switch (e.kind) {
    case 'const': {
      const value = e.value;
      return () => value;
    }
    case 'var': {
      const i = names.indexOf(e.name);
      if (i < 0) throw new Error(`reference: expression uses unbound variable '${e.name}'`);
      return (vals) => vals[i]!;
    }
    case 'call': {
      const [p, q] = e.args.map((a) => compileExpr(a, names));
      const x = p!;
      switch (e.fn) {
        case 'add': return (s) => x(s) + q!(s);
        case 'sub': return (s) => x(s) - q!(s);
        case 'mul': return (s) => x(s) * q!(s);
        case 'div': return (s) => x(s) / q!(s);
        case 'neg': return (s) => -x(s);
        case 'max': return (s) => Math.max(x(s), q!(s));
        case 'exp': return (s) => Math.exp(x(s));
        case 'tanh': return (s) => Math.tanh(x(s));
        case 'erf': return (s) => erfValue(x(s));
        case 'step': return (s) => (x(s) > 0 ? 1 : 0);
      }
    }
  }
}
