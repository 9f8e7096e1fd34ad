import { describe, expect, it } from "vitest";
import { ByteTokenizer } from "../../src/runtime/tokenizer/index.js";

describe("ByteTokenizer", () => {
  const t = new ByteTokenizer();

  it("maps UTF-8 bytes to 3 + byte after BOS", () => {
    expect([t.padId, t.bosId, t.eosId, t.vocabSize]).toEqual([0, 1, 2, 259]);
    expect(t.encode("A")).toEqual([1, 0x41 + 3]);
    expect(t.encode("A", { addSpecial: false })).toEqual([0x44]);
    // 你好 is E4 BD A0 E5 A5 BD in UTF-8.
    expect(t.encode("你好", { addSpecial: false })).toEqual([0xe4, 0xbd, 0xa0, 0xe5, 0xa5, 0xbd].map((b) => b + 3));
    expect(t.encode("")).toEqual([1]);
    expect(Math.max(...t.encode("\u00ff\u{10ffff}"))).toBeLessThan(t.vocabSize);
  });

  it("round-trips Chinese, emoji and control characters", () => {
    for (const s of ["你好，世界！", "emoji 🙂", "tab\tnew\nline\u0000nul", ""]) expect(t.decode(t.encode(s))).toBe(s);
  });

  it("drops pad/bos/eos and ids beyond the byte range", () => {
    expect(t.decode([1, 0x44, 0, 2, 300, 0x45, 319])).toBe("AB");
  });

  it("decodes broken UTF-8 leniently", () => {
    // First two bytes of 你 (E4 BD), then 'A': the cut character becomes U+FFFD.
    expect(t.decode([0xe4 + 3, 0xbd + 3, 0x41 + 3])).toBe("\ufffdA");
  });
});
