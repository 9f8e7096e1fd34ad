// Data files that are not all UTF-8: where the first bad byte of each line is, so a bad line is a
// bad record (file:line:col, skippable under `on_error = skip`) rather than a bad file.

const strict = new TextDecoder("utf-8", { fatal: true });

/** 1-based line → 1-based column (in UTF-16 units of the line's valid prefix) of its first invalid byte. */
export function invalidUtf8Lines(bytes: Uint8Array): Map<number, { column: number; byte: number }> {
  const bad = new Map<number, { column: number; byte: number }>();
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    const row = bytes.subarray(start, end);
    try {
      strict.decode(row);
    } catch {
      const at = firstInvalid(row);
      bad.set(line, { column: new TextDecoder().decode(row.subarray(0, at)).length + 1, byte: start + at });
    }
    start = end + 1;
  }
  return bad;
}

/** Offset of the first byte of `b` that does not start a valid UTF-8 sequence. */
function firstInvalid(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > b.length) return i;
    try {
      strict.decode(b.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return b.length;
}
