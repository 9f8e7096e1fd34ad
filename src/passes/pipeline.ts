/**
 * The compiler's middle, top to bottom. Each pass takes the graph and the shared context and
 * returns a new graph; none calls another. `pefc compile --until NAME` stops after a named pass,
 * and the tests run verify() after every one.
 */
import type { Graph } from "../ir/index.js";
import type { PassContext } from "./context.js";
import { freeze } from "./freeze.js";
import { resolveSelectors } from "./resolve-selectors.js";

export interface Pass {
  name: string;
  /** One line for `pefc compile --help`. */
  doc: string;
  run(graph: Graph, ctx: PassContext): Graph;
}

export const PIPELINE: readonly Pass[] = [
  { name: "resolve-selectors", doc: "bind selectors to modules and layers; refuse empty terms and conflicts", run: resolveSelectors },
  { name: "freeze", doc: "freeze the base; unfreeze selected modules; bitfit biases", run: freeze },
];

export function passNames(): string[] {
  return PIPELINE.map((p) => p.name);
}

export interface RunOptions {
  /** Stop after this pass (inclusive). */
  until?: string;
  /** Called after each pass, e.g. to verify or print. */
  after?: (pass: Pass, graph: Graph) => void;
}

/**
 * Runs the pipeline. Stops early when a pass reports an error: later passes may rely on what the
 * failed one should have established.
 */
export function runPipeline(graph: Graph, ctx: PassContext, opts: RunOptions = {}): Graph {
  let g = graph;
  for (const pass of PIPELINE) {
    g = pass.run(g, ctx);
    opts.after?.(pass, g);
    if (ctx.diagnostics.some((d) => d.severity === "error")) break;
    if (pass.name === opts.until) break;
  }
  return g;
}
