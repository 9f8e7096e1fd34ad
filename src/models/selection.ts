/**
 * A set of selected modules, where a module is selected whole or as output-row ranges (the slice roles
 * @q/@k/@v of a fused projection). Union keeps ranges as written (@q and @k stay two slices, so each
 * gets its own adapter) and lets a whole module absorb its slices; difference cuts ranges out, so
 * `@qkv except @q` leaves the k and v rows.
 */
import type { ModuleInfo } from "./types.js";

export type Range = [number, number];

/** A module of the selection: whole, or only these output rows. */
export interface Match {
  module: ModuleInfo;
  rows?: Range;
}

type Entry = { module: ModuleInfo; whole: true } | { module: ModuleInfo; whole: false; ranges: Range[] };

export class Selection {
  private readonly entries = new Map<string, Entry>();

  get size(): number {
    return this.entries.size;
  }

  addWhole(m: ModuleInfo): void {
    this.entries.set(m.path, { module: m, whole: true });
  }

  addRange(m: ModuleInfo, r: Range): void {
    const e = this.entries.get(m.path);
    if (e?.whole) return;
    const ranges = e ? e.ranges : [];
    if (!ranges.some((x) => x[0] === r[0] && x[1] === r[1])) ranges.push([r[0], r[1]]);
    this.entries.set(m.path, { module: m, whole: false, ranges });
  }

  addAll(other: Selection): void {
    for (const e of other.entries.values()) {
      if (e.whole) this.addWhole(e.module);
      else for (const r of e.ranges) this.addRange(e.module, r);
    }
  }

  /** Keeps the modules `keep` accepts. */
  filter(keep: (m: ModuleInfo) => boolean): Selection {
    const out = new Selection();
    for (const [k, e] of this.entries) if (keep(e.module)) out.entries.set(k, e);
    return out;
  }

  minus(cut: Selection): Selection {
    const out = new Selection();
    for (const [path, e] of this.entries) {
      const c = cut.entries.get(path);
      if (!c) {
        out.entries.set(path, e);
        continue;
      }
      if (c.whole) continue;
      const mine: Range[] = e.whole ? [[0, e.module.outFeatures]] : e.ranges;
      const left = mine.flatMap((r) => subtract(r, c.ranges));
      if (left.length > 0) out.entries.set(path, { module: e.module, whole: false, ranges: left });
    }
    return out;
  }

  /** Matches in the order of `modules` (the module tree), ranges by their first row. */
  toMatches(modules: readonly ModuleInfo[]): Match[] {
    const out: Match[] = [];
    for (const m of modules) {
      const e = this.entries.get(m.path);
      if (!e) continue;
      if (e.whole) out.push({ module: m });
      else for (const r of [...e.ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1])) out.push({ module: m, rows: r });
    }
    return out;
  }
}

/** `r` minus the union of `cuts`, as ordered disjoint pieces. */
function subtract(r: Range, cuts: readonly Range[]): Range[] {
  let pieces: Range[] = [r];
  for (const [c0, c1] of cuts) {
    const next: Range[] = [];
    for (const [a, b] of pieces) {
      if (c1 <= a || c0 >= b) {
        next.push([a, b]);
        continue;
      }
      if (a < c0) next.push([a, c0]);
      if (c1 < b) next.push([c1, b]);
    }
    pieces = next;
  }
  return pieces;
}
