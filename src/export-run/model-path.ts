/**
 * The base model's path as a bundle names it. A spec that finds its model through environment
 * variables (`model "${CHATGLM2_6B}";`) is exported with the variables, not with this machine's
 * value: the bundle runs where the model lives elsewhere, and train.py expands them there as pefc
 * does here (braced form only, an unset or empty variable an error).
 */
import type { Spec } from "../check/spec.js";

export function modelAsWritten(spec: Spec): string {
  return spec.model!.asWritten ?? spec.model!.source;
}

/** The environment variables the model path names, in order of first use. */
export function modelEnvNames(spec: Spec): string[] {
  const names = [...(spec.model!.asWritten ?? "").matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!);
  return [...new Set(names)];
}
