// The run log while kernels compile: plain lines at the start, about every quarter and the end;
// one JSON event per tenth with --json; a line redrawn in place on a terminal, ended at the end.

import { describe, expect, it } from "vitest";
import { makeReporter } from "../../src/runtime/train/reporter.js";

function drive(json: boolean, tty: boolean, total: number): { lines: string[]; bar: string[] } {
  const lines: string[] = [];
  const bar: string[] = [];
  const r = makeReporter({ json, tty, write: (l) => lines.push(l), bar: (t) => bar.push(t) });
  for (let d = 0; d <= total; d++) r.compiling?.(d, total);
  return { lines, bar };
}

describe("compiling kernels in the run log", () => {
  it("plain: start, quarters, and the total with its time", () => {
    const { lines } = drive(false, false, 8);
    expect(lines.slice(0, -1)).toEqual(["compiling kernels 0/8", "compiling kernels 2/8", "compiling kernels 4/8", "compiling kernels 6/8"]);
    expect(lines.at(-1)).toMatch(/^compiled 8 kernels in \d+\.\d s$/);
  });
  it("--json: compiling events with done, total and elapsed seconds", () => {
    const { lines } = drive(true, false, 20);
    const ev = lines.map((l) => JSON.parse(l) as { event: string; done: number; total: number; elapsed: number });
    expect(ev.every((e) => e.event === "compiling" && e.total === 20 && e.elapsed >= 0)).toBe(true);
    expect(ev.map((e) => e.done)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
  });
  it("terminal: one line redrawn in place, ended with a newline once done", () => {
    const { lines, bar } = drive(false, true, 3);
    expect(lines).toEqual([]);
    expect(bar.slice(0, 3)).toEqual(["\r\x1b[2Kcompiling kernels 0/3", "\r\x1b[2Kcompiling kernels 1/3", "\r\x1b[2Kcompiling kernels 2/3"]);
    expect(bar[3]).toMatch(/^\r\x1b\[2Kcompiled 3 kernels in \d+\.\d s\n$/);
  });
});
