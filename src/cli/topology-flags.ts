/** The --engine, --precision, --gpus and --nodes flags that export-run and plan --engine share. */
import { ENGINES, PRECISIONS, type Engine, type Precision } from "../export-run/engine-files.js";

export interface TopologyFlags {
  engine: Engine;
  precision: Precision;
  gpus: number;
  nodes: number;
}

/** The flags with `engine` as the default engine, or the message saying which flag is wrong. */
export function topologyFlags(values: Record<string, unknown>, command: string, engine: Engine): TopologyFlags | string {
  const e = (values.engine as string | undefined) ?? engine;
  if (!(ENGINES as readonly string[]).includes(e)) return `pefc ${command}: --engine takes ${ENGINES.join(", ")}, not '${e}'`;
  const precision = (values.precision as string | undefined) ?? "no";
  if (!(PRECISIONS as readonly string[]).includes(precision)) return `pefc ${command}: --precision takes ${PRECISIONS.join(", ")}, not '${precision}'`;
  const counts: number[] = [];
  for (const flag of ["gpus", "nodes"]) {
    const v = values[flag];
    const n = v === undefined ? 1 : Number(v);
    if (!Number.isInteger(n) || n < 1 || String(v).trim() === "") return `pefc ${command}: --${flag} takes a positive whole number, not '${String(v)}'`;
    counts.push(n);
  }
  return { engine: e as Engine, precision: precision as Precision, gpus: counts[0]!, nodes: counts[1]! };
}
