/**
 * Op kind → lowering. Each family registers its lowerings in its own file; this table is their
 * union, and a test checks that every op of the IR table has one.
 */
import type { Lowering } from "./types.js";

const TABLE = new Map<string, Lowering>();

/** Registers the lowerings of one family; an op registered twice is a bug. */
export function registerLowerings(family: Readonly<Record<string, Lowering>>): void {
  for (const [op, l] of Object.entries(family)) {
    if (TABLE.has(op)) throw new Error(`lowering for '${op}' registered twice`);
    TABLE.set(op, l);
  }
}

export function lowering(op: string): Lowering | undefined {
  return TABLE.get(op);
}

export function loweredOps(): string[] {
  return [...TABLE.keys()].sort();
}
