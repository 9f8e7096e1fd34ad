/**
 * The compiler's middle, top to bottom. Each pass takes the graph and the shared context and
 * returns a new graph; none calls another. `pefc compile --until NAME` stops after a named pass,
 * and the tests run verify() after every one.
 */
import type { Graph } from "../ir/index.js";
import type { PassContext } from "./context.js";
import { adaloraOrthReg } from "./adalora-loss.js";
import { autodiff } from "./autodiff.js";
import { freeze } from "./freeze.js";
import { fuse } from "./fuse.js";
import { requireTrainable } from "./require-trainable.js";
import { optimizer } from "./optimizer.js";
import { injectAdalora } from "./inject-adalora.js";
import { injectAdapters } from "./inject-adapters.js";
import { injectIa3 } from "./inject-ia3.js";
import { injectLora } from "./inject-lora.js";
import { injectPrefix } from "./inject-prefix.js";
import { injectPrompt } from "./inject-prompt.js";
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
  { name: "inject-lora", doc: "add low-rank updates s·B·A·dropout(x) to the targeted linear modules (gated in unipelt)", run: injectLora },
  { name: "inject-adalora", doc: "add AdaLoRA's SVD-shaped updates B·(A⊙E) with the frozen ranknum scale", run: injectAdalora },
  { name: "inject-ia3", doc: "rescale targeted outputs (feed-forward modules: inputs) by learned vectors", run: injectIa3 },
  { name: "inject-adapters", doc: "insert bottleneck adapters (houlsby, pfeiffer, parallel) in the selected layers", run: injectAdapters },
  { name: "inject-prefix", doc: "feed trained key/value prefixes (prefix tuning, p-tuning v2) to each selected layer's attention", run: injectPrefix },
  { name: "inject-prompt", doc: "prepend virtual-token embeddings (prompt tuning, p-tuning) and pad labels and positions", run: injectPrompt },
  { name: "require-trainable", doc: "refuse a run in which no parameter trains", run: requireTrainable },
  { name: "adalora-orth-reg", doc: "add AdaLoRA's orthogonal regulariser to the loss", run: adaloraOrthReg },
  { name: "autodiff", doc: "backward toward trainable parameters only; prune; record saved activations", run: autodiff },
  { name: "optimizer", doc: "gradient clipping and one sgd/adam/adamw update per trainable parameter", run: optimizer },
  { name: "fuse", doc: "LoRA branches and residual adds into the linear epilogues; scales into the linear gradients", run: fuse },
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
