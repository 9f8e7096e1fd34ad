import { describe, expect, it } from "vitest";
import {
  bf16ArrayToF32,
  bf16ToNumber,
  f16ArrayToF32,
  f16ToNumber,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32Bits,
  f32FromBits,
  numberToBf16,
  numberToF16,
} from "../../src/runtime/io/half.js";

describe("f16", () => {
  it("encodes hand-computed bit patterns", () => {
    // [value, f16 bits, value the bits decode to]
    const cases: [number, number, number][] = [
      [1.0, 0x3c00, 1.0],
      [-2.0, 0xc000, -2.0],
      [0.5, 0x3800, 0.5],
      [0, 0x0000, 0],
      [-0, 0x8000, -0],
      [65504, 0x7bff, 65504], // largest finite
      [2 ** -14, 0x0400, 2 ** -14], // smallest normal
      [2 ** -24, 0x0001, 2 ** -24], // smallest subnormal
      [2 ** -14 - 2 ** -24, 0x03ff, 2 ** -14 - 2 ** -24], // largest subnormal
      [Infinity, 0x7c00, Infinity],
      [-Infinity, 0xfc00, -Infinity],
      [1e6, 0x7c00, Infinity], // overflow
      [2 ** -26, 0x0000, 0], // underflow
    ];
    for (const [x, bits, back] of cases) {
      expect(numberToF16(x), `encode ${x}`).toBe(bits);
      expect(f16ToNumber(bits), `decode 0x${bits.toString(16)}`).toBe(back);
    }
  });

  it("rounds ties to even", () => {
    // 1 + 2^-11 is halfway between 1 (0x3c00, even) and 1 + 2^-10 (0x3c01): goes down.
    expect(numberToF16(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3·2^-11 is halfway between 0x3c01 (odd) and 0x3c02 (even): goes up.
    expect(numberToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // Just above a tie rounds up.
    expect(numberToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    // 65520 is halfway between 65504 (odd mantissa 0x3ff) and 65536 (inf): goes to inf.
    expect(numberToF16(65520)).toBe(0x7c00);
    expect(numberToF16(65519.99)).toBe(0x7bff);
    // Subnormal ties: 2^-25 is halfway between 0 and 2^-24 → 0; 3·2^-25 → 2·2^-24.
    expect(numberToF16(2 ** -25)).toBe(0x0000);
    expect(numberToF16(3 * 2 ** -25)).toBe(0x0002);
    // Largest subnormal + half an ulp rounds up into the smallest normal.
    expect(numberToF16(2 ** -14 - 2 ** -25)).toBe(0x0400);
  });

  it("keeps NaN NaN", () => {
    expect(numberToF16(NaN) & 0x7c00).toBe(0x7c00);
    expect(numberToF16(NaN) & 0x3ff).not.toBe(0);
    // A signalling-looking f32 NaN whose payload lives only in the low bits stays NaN.
    expect(Number.isNaN(f16ToNumber(numberToF16(f32FromBits(0x7f800001))))).toBe(true);
    expect(Number.isNaN(f16ToNumber(0x7e00))).toBe(true);
  });

  it("matches numpy.float16 on sample values", () => {
    // Produced by numpy: float(np.float32(x)), np.float16(np.float32(x)).view(np.uint16).
    const table: [number, number][] = [
      [0.001230153371579945, 0x150a],
      [29.874553680419922, 0x4f78],
      [-0.00027413785574026406, 0x8c7e],
      [-8905.91796875, 0xf059],
      [-4.546707828012586e-7, 0x8008],
      [-59498.79296875, 0xfb43],
      [65519.98828125, 0x7bff],
      [65520.0, 0x7c00],
      [9.99999993922529e-9, 0x0000],
      [2.9800000689306216e-8, 0x0000],
      [2.999999892949745e-8, 0x0001],
      [0.10000000149011612, 0x2e66],
      [0.3333333432674408, 0x3555],
    ];
    for (const [x, bits] of table) expect(numberToF16(x), `${x}`).toBe(bits);
  });

  it("widens all 65536 patterns exactly and narrows them back", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const wide = f16ArrayToF32(all);
    const back = f32ArrayToF16(wide);
    for (let h = 0; h < 65536; h++) {
      const exp = (h >> 10) & 0x1f;
      const mant = h & 0x3ff;
      const sign = h & 0x8000 ? -1 : 1;
      // The textbook value of a half, computed in f64 independently of the bit tricks.
      const want = exp === 0x1f ? (mant ? NaN : sign * Infinity) : exp === 0 ? sign * mant * 2 ** -24 : sign * (1 + mant / 1024) * 2 ** (exp - 15);
      const got = wide[h]!;
      if (Number.isNaN(want)) {
        expect(Number.isNaN(got)).toBe(true);
        expect(back[h]! & 0x7c00).toBe(0x7c00);
      } else {
        if (!Object.is(got, want)) expect(got, `0x${h.toString(16)}`).toBe(want);
        if (back[h] !== h) expect(back[h], `0x${h.toString(16)}`).toBe(h);
      }
    }
  });

  it("rounds every midpoint between neighbouring finite halves to the even one", () => {
    let failures = 0;
    for (let h = 0; h < 0x7bff; h++) {
      const a = f16ToNumber(h);
      const b = f16ToNumber(h + 1);
      const mid = (a + b) / 2; // exact in f32: halves have 11 significant bits
      const even = h % 2 === 0 ? h : h + 1;
      if (numberToF16(mid) !== even) failures++;
      // One f32 ulp either side of the midpoint decides the direction.
      const bits = f32Bits(mid);
      if (numberToF16(f32FromBits(bits + 1)) !== h + 1) failures++;
      if (mid > 0 && numberToF16(f32FromBits(bits - 1)) !== h) failures++;
      if (numberToF16(-mid) !== (even | 0x8000)) failures++;
    }
    expect(failures).toBe(0);
  });
});

describe("bf16", () => {
  it("encodes hand-computed bit patterns", () => {
    expect(numberToBf16(1.0)).toBe(0x3f80);
    expect(numberToBf16(-2.0)).toBe(0xc000);
    expect(numberToBf16(0)).toBe(0x0000);
    expect(numberToBf16(-0)).toBe(0x8000);
    expect(numberToBf16(Infinity)).toBe(0x7f80);
    expect(numberToBf16(-Infinity)).toBe(0xff80);
    expect(numberToBf16(65504)).toBe(0x4780); // 65504 = 0x477fe000 rounds up to 65536
    expect(bf16ToNumber(0x4780)).toBe(65536);
    expect(bf16ToNumber(0x7f7f)).toBe(3.3895313892515355e38); // largest finite bf16
    expect(bf16ToNumber(0x0001)).toBe(2 ** -133); // smallest subnormal
    expect(numberToBf16(2 ** -133)).toBe(0x0001);
    // Max f32 is above the bf16 max + half ulp: overflows to inf.
    expect(numberToBf16(f32FromBits(0x7f7fffff))).toBe(0x7f80);
  });

  it("rounds ties to even", () => {
    // 1 + 2^-8 is halfway between 0x3f80 (even) and 0x3f81: down. 1 + 3·2^-8: up to 0x3f82.
    expect(numberToBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(numberToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(numberToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    // f32 0x3f80_8000 is the tie itself; 0x3f81_8000 ties upward to 0x3f82.
    expect(numberToBf16(f32FromBits(0x3f808000))).toBe(0x3f80);
    expect(numberToBf16(f32FromBits(0x3f818000))).toBe(0x3f82);
    expect(numberToBf16(f32FromBits(0x3f807fff))).toBe(0x3f80);
  });

  it("keeps NaN NaN, including payloads only in the dropped bits", () => {
    expect(Number.isNaN(bf16ToNumber(numberToBf16(NaN)))).toBe(true);
    expect(Number.isNaN(bf16ToNumber(numberToBf16(f32FromBits(0x7f800001))))).toBe(true);
    expect(Number.isNaN(bf16ToNumber(numberToBf16(f32FromBits(0xff800001))))).toBe(true);
  });

  it("widens all patterns exactly and narrows them back", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const wide = bf16ArrayToF32(all);
    const back = f32ArrayToBf16(wide);
    // Bits are compared through an integer view: reading a signalling NaN as a JS number quietens it.
    const wideBits = new Uint32Array(wide.buffer);
    let failures = 0;
    for (let h = 0; h < 65536; h++) {
      if (wideBits[h] !== (h << 16) >>> 0) failures++;
      const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      if (isNaN ? (back[h]! & 0x7f80) !== 0x7f80 || (back[h]! & 0x7f) === 0 : back[h] !== h) failures++;
    }
    expect(failures).toBe(0);
  });
});
