/**
 * Folds a trained adapter into the base weights (`pefc merge`, `export merged`), so the result is
 * a plain checkpoint that computes what base + adapter computed:
 *
 *   trained base weights (bitfit biases, unfrozen modules, lora's bias option): replaced
 *   ia3, other modules   [out,1]:  W ← diag(l)·W, b ← l ⊙ b     (y = (xWᵀ + b) ⊙ l)
 *   ia3, feed-forward    [1,in]:   W ← W·diag(l)                 (y = (x ⊙ l)Wᵀ + b)
 *   lora:                          W ← W + s·B·A                 (s = alpha/r, alpha/√r with rslora)
 *   adalora:                       W ← W + B·diag(E)·A · alpha/(ranknum + 1e-5)
 *
 * in that order, which is the graph's: a lora or adalora branch on a module that ia3 also scales
 * reads the unscaled input and adds to the scaled output (inject-ia3.ts). GPT-2's Conv1D stores W
 * as [in, out], so the delta is added transposed and ia3 scales columns instead of rows, as PEFT's
 * fan_in_fan_out does. Deltas accumulate in f64.
 *
 * Prefixes, prompts, bottleneck adapters and gated lora change the computation itself, not a
 * weight: merging them is a UserError with code P504.
 */
import type { Spec } from "../../check/spec.js";
import type { Graph } from "../../ir/index.js";
import type { ModelProfile, ModuleInfo } from "../../models/types.js";
import { UserError } from "../io/errors.js";
import { moduleOf } from "./layout.js";
import { loraModuleSettings } from "./lora-settings.js";

export interface MergeOptions {
  /** Where the base weights came from, for messages. */
  baseDir?: string;
  /** Base weights by checkpoint name, as stored (Conv1D weights [in, out]). Not modified. */
  base: ReadonlyMap<string, Float32Array>;
  profile: ModelProfile;
  spec: Spec;
  graph: Graph;
  /** Trained values by graph parameter name. */
  values: ReadonlyMap<string, Float32Array>;
}

/** The merged weights: changed tensors are new arrays, unchanged ones are the base's own. */
export function mergeAdapter(o: MergeOptions): Map<string, Float32Array> {
  refuseUnmergeable(o.spec);
  const out = new Map(o.base);
  const mods = new Map(o.profile.modules.map((m) => [m.path, m]));
  const val = (name: string): Float32Array => {
    const v = o.values.get(name);
    if (!v) throw new Error(`no trained value for ${name}`);
    return v;
  };
  const fresh = new Set<string>();
  const writable = (name: string): Float32Array => {
    const w = out.get(name);
    if (!w) throw new UserError(`${o.baseDir ?? "the base weights"}: no tensor '${name}' to merge into`, { ...(o.baseDir ? { file: o.baseDir } : {}), tensor: name });
    if (fresh.has(name)) return w;
    const copy = w.slice();
    out.set(name, copy);
    fresh.add(name);
    return copy;
  };

  for (const p of o.graph.params) {
    if (p.origin === "base" && p.trainable) {
      writable(p.name).set(val(p.name));
    }
  }
  for (const p of o.graph.params.filter((q) => q.origin === "ia3")) {
    const m = moduleInfo(mods, moduleOf(p.name, ".ia3_l")!, o);
    const l = val(p.name);
    const W = writable(weightName(m));
    const inputSide = p.shape[0] === 1;
    const [I, O] = [m.inFeatures, m.outFeatures];
    for (let r = 0; r < O; r++) {
      for (let c = 0; c < I; c++) {
        const at = m.transposed ? c * O + r : r * I + c;
        W[at] = W[at]! * (inputSide ? l[c]! : l[r]!);
      }
    }
    if (!inputSide && m.hasBias) {
      const b = writable(`${m.path}.bias`);
      for (let r = 0; r < O; r++) b[r] = b[r]! * l[r]!;
    }
  }
  o.spec.methods.forEach((spec, i) => {
    if (spec.method === "lora") {
      const own = o.graph.params.filter((p) => p.method === i && p.name.endsWith(".lora_A.weight")).map((p) => moduleOf(p.name, ".lora_A.weight")!);
      const settings = loraModuleSettings(o.spec, o.profile, spec, own);
      for (const path of own) {
        const m = moduleInfo(mods, path, o);
        addDelta(writable(weightName(m)), m, val(`${path}.lora_B.weight`), val(`${path}.lora_A.weight`), undefined, settings.get(path)!.scale);
      }
    } else if (spec.method === "adalora") {
      const own = o.graph.params.filter((p) => p.method === i && p.name.endsWith(".lora_A")).map((p) => moduleOf(p.name, ".lora_A")!);
      for (const path of own) {
        const m = moduleInfo(mods, path, o);
        const ranknum = o.values.get(`${path}.ranknum`)?.[0] ?? spec.options.init_r;
        addDelta(writable(weightName(m)), m, val(`${path}.lora_B`), val(`${path}.lora_A`), val(`${path}.lora_E`), spec.options.alpha / (ranknum + 1e-5));
      }
    }
  });
  return out;
}

function refuseUnmergeable(spec: Spec): void {
  for (const m of spec.methods) {
    const what =
      m.method === "lora" || m.method === "adalora" || m.method === "ia3" || m.method === "bitfit"
        ? m.gated ? `gated ${m.method}` : undefined
        : m.method === "adapter" ? `adapter ${m.variant}` : m.method;
    if (what !== undefined) {
      throw new UserError(`P504: cannot merge ${what} into the weights (line ${m.line}): it changes the computation, not a weight; export the adapter instead`);
    }
  }
}

function moduleInfo(mods: Map<string, ModuleInfo>, path: string, o: MergeOptions): ModuleInfo {
  const m = mods.get(path);
  if (!m) throw new Error(`no module ${path} in ${o.profile.name}`);
  if (m.tiedTo) {
    throw new UserError(`P504: cannot merge into ${path}: its weight is the input embedding's (${m.tiedTo}), so the change would reach the embeddings too; export the adapter instead`);
  }
  return m;
}

function weightName(m: ModuleInfo): string {
  const w = m.params.find((p) => p.name.endsWith(".weight"));
  if (!w) throw new Error(`module ${m.path} has no weight`);
  return w.name;
}

/** W += scale · B·diag(E)·A (E absent: identity), transposed for Conv1D storage. B [out,r], A [r,in]. */
function addDelta(W: Float32Array, m: ModuleInfo, B: Float32Array, A: Float32Array, E: Float32Array | undefined, scale: number): void {
  const I = m.inFeatures;
  const O = m.outFeatures;
  const r = A.length / I;
  if (B.length !== O * r) throw new Error(`lora_B of ${m.path} has ${B.length} elements, expected ${O}·${r}`);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += B[o * r + k]! * (E ? E[k]! : 1) * A[k * I + i]!;
      const at = m.transposed ? i * O + o : o * I + i;
      W[at] = W[at]! + scale * acc;
    }
  }
}
