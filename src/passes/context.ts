/**
 * What passes share besides the graph: the checked spec, the model profile, one diagnostics list,
 * and facts an earlier pass established for later ones (which modules and layers each method
 * targets). A pass reads the context and returns a new graph; it never calls another pass.
 */
import type { MethodSpec, Spec } from "../check/spec.js";
import type { Diagnostic } from "../diagnostics/index.js";
import type { Match } from "../models/select.js";
import type { ModelProfile } from "../models/types.js";
import type { Selector, SelectorTerm } from "../parser/ast.js";

export interface TermMatch {
  term: SelectorTerm;
  /** Module paths (with a row range for slices) the term matched on its own. */
  matched: Match[];
  except: boolean;
}

/** Where one method applies, as resolved against the model. */
export interface MethodTarget {
  /** Module-level methods (lora, adalora, ia3, bitfit): the modules, in module-tree order. */
  modules: Match[];
  /** Layer-level methods (adapters, prefix, p_tuning_v2): the layer indices, ascending. */
  layers: number[];
  /** What each selector term matched, for `pefc plan`. Empty when the method took its default. */
  terms: TermMatch[];
  /** The selector used when the user gave none (PEFT's per-architecture default), as text. */
  defaultTarget?: string;
  /** lora's override blocks, with the modules each one changes. */
  overrides: { selector: Selector; options: Record<string, number>; modules: string[] }[];
}

export interface PassContext {
  file: string;
  spec: Spec;
  profile: ModelProfile;
  diagnostics: Diagnostic[];
  /** Indexed like spec.methods; filled by the resolve-selectors pass. */
  targets: MethodTarget[];
  /**
   * The freeze and unfreeze statements in file order, each with the modules it names (`all`: every
   * base parameter), filled by resolve-selectors. Later statements win.
   */
  freezeSteps: { action: "freeze" | "unfreeze"; all: boolean; modules: Match[] }[];
  /** Tokenizes text for prompt_tuning's text initialisation, when a tokenizer is at hand. */
  encode?: (text: string) => number[];
  /** Run the fuse pass (default true); off gives the unfused graph for comparisons and benchmarks. */
  fuse?: boolean;
}

export function newContext(spec: Spec, profile: ModelProfile, extra: Partial<Pick<PassContext, "encode" | "fuse">> = {}): PassContext {
  return { file: spec.file, spec, profile, diagnostics: [], targets: [], freezeSteps: [], ...extra };
}

/** `lora`, `adapter houlsby`: the method as the user wrote it. */
export function methodLabel(m: MethodSpec): string {
  return m.method === "adapter" ? `adapter ${m.variant}` : m.method;
}
