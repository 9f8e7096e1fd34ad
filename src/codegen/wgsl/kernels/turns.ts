// sin and cos of pos·ω for integer positions, accurate to about 4e-7 at any position below 2^16.
// A plain f32 `cos(f32(pos) * ω)` loses about pos·2^-24 rad to the rounding of ω and of the
// product (1e-4 at pos 2048) and then meets GPU sin/cos, which Vulkan only requires to be good to
// 2^-11 on [-π, π]. So ω/2π is split on the host into three parts of 8 significant bits, whose
// products with pos (|pos| < 2^16) are exact; their fractional turns add up to the angle mod 2π,
// and a short Taylor series on [-π/4, π/4] with quadrant selection gives sin and cos.

import { f32 } from "../render.js";

/** x as hi + mid + lo with hi and mid of `bits` significant bits each (lo rounded to f32). */
export function split3(x: number, bits = 8): [number, number, number] {
  const top = (v: number): number => {
    if (v === 0) return 0;
    const scale = 2 ** (bits - 1 - Math.floor(Math.log2(Math.abs(v))));
    return Math.round(v * scale) / scale;
  };
  const hi = top(x);
  const mid = top(x - hi);
  return [hi, mid, Math.fround(x - hi - mid)];
}

/**
 * WGSL declaring the tables `name_h/_m/_l` of the turns per position of each ω in `omegas` and
 * `fn name(p: f32, k: u32) -> vec2<f32>` returning (sin, cos) of p·ω_k.
 */
export function sinCosTable(name: string, omegas: readonly number[]): string {
  const parts = omegas.map((w) => split3(w / (2 * Math.PI)));
  const n = omegas.length;
  const table = (j: number, suffix: string): string =>
    `var<private> ${name}_${suffix}: array<f32, ${n}> = array<f32, ${n}>(${parts.map((p) => f32(p[j]!)).join(", ")});`;
  return `
${table(0, "h")}
${table(1, "m")}
${table(2, "l")}
fn ${name}(p: f32, k: u32) -> vec2<f32> {
  let t0 = fract(p * ${name}_h[k]) + fract(p * ${name}_m[k]) + p * ${name}_l[k];
  let q = (t0 - floor(t0)) * 4.0;
  let qr = round(q);
  let r = (q - qr) * 1.5707963267948966;
  let r2 = r * r;
  let s = r * (1.0 - r2 / 6.0 * (1.0 - r2 / 20.0 * (1.0 - r2 / 42.0 * (1.0 - r2 / 72.0))));
  let c = 1.0 - r2 / 2.0 * (1.0 - r2 / 12.0 * (1.0 - r2 / 30.0 * (1.0 - r2 / 56.0 * (1.0 - r2 / 90.0))));
  switch (u32(qr) & 3u) {
    case 0u: { return vec2<f32>(s, c); }
    case 1u: { return vec2<f32>(c, -s); }
    case 2u: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}`;
}
