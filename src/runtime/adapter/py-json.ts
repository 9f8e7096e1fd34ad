/**
 * adapter_config.json as PEFT writes it: Python's `json.dumps(config, indent=2, sort_keys=True)`,
 * byte for byte, so a folder saved here diffs cleanly against one saved by PEFT. JavaScript has one
 * number type where Python has two, so fields Python holds as floats are wrapped in `PyFloat`
 * (`0.0`, `0.85`, `1e-05`); plain numbers are written as Python ints. Python escapes every
 * non-ASCII character (ensure_ascii) and writes no trailing newline.
 */

/** A number Python holds as a float: written with a decimal point or an exponent, as repr() does. */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyJson = null | boolean | number | string | PyFloat | PyJson[] | { [key: string]: PyJson };

export function pyFloat(x: number): PyFloat {
  return new PyFloat(x);
}

/** Python's json.dumps(value, indent=2, sort_keys=True). */
export function pyJsonDumps(value: PyJson): string {
  return dump(value, "");
}

function dump(v: PyJson, pad: string): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return pyInt(v);
  if (typeof v === "string") return pyString(v);
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  const inner = `${pad}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return `[\n${v.map((x) => inner + dump(x, inner)).join(",\n")}\n${pad}]`;
  }
  const keys = Object.keys(v).sort(byCodePoint);
  if (keys.length === 0) return "{}";
  return `{\n${keys.map((k) => `${inner}${pyString(k)}: ${dump(v[k]!, inner)}`).join(",\n")}\n${pad}}`;
}

function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function pyInt(x: number): string {
  if (!Number.isSafeInteger(x)) throw new Error(`adapter config: ${x} is not an integer; wrap floats in pyFloat()`);
  return String(x);
}

/** repr(float): the shortest round-trip digits, fixed notation for exponents -4..15, else d.ddde±XX. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mant, expText] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, "0");
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
  const frac = digits.slice(exp + 1);
  return `${sign}${intPart}.${frac.length > 0 ? frac : "0"}`;
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

/** A JSON string with ensure_ascii: everything outside printable ASCII as \uXXXX (UTF-16 units). */
export function pyString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short) out += short;
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}
