/**
 * Builders for the few module kinds the three architectures use, so each profile reads as a list of
 * Hugging Face names and shapes, and parameter names and shapes follow one rule (torch's: Linear weight
 * [out, in], Conv1D weight [in, out], Embedding [num, dim], norms [dim]).
 */
import type { ModelProfile, ModuleInfo } from "../types.js";

export interface LinearSpec {
  bias: boolean;
  /** GPT-2's Conv1D stores the weight [in, out]. */
  transposed?: boolean;
  layer?: number;
  roles: string[];
}

export function linear(path: string, inF: number, outF: number, spec: LinearSpec): ModuleInfo {
  const transposed = spec.transposed ?? false;
  const params = [{ name: `${path}.weight`, shape: transposed ? [inF, outF] : [outF, inF] }];
  if (spec.bias) params.push({ name: `${path}.bias`, shape: [outF] });
  return withLayer(
    { path, kind: "linear", inFeatures: inF, outFeatures: outF, transposed, hasBias: spec.bias, roles: spec.roles, params },
    spec.layer,
  );
}

/** A head that shares the input embedding's weight: a module to select, with no parameter of its own. */
export function tiedHead(path: string, hidden: number, vocab: number, embeddingWeight: string): ModuleInfo {
  return {
    path,
    kind: "linear",
    inFeatures: hidden,
    outFeatures: vocab,
    transposed: false,
    hasBias: false,
    roles: ["head"],
    params: [],
    tiedTo: embeddingWeight,
  };
}

export function embedding(path: string, num: number, dim: number, roles: string[]): ModuleInfo {
  return {
    path,
    kind: "embedding",
    inFeatures: num,
    outFeatures: dim,
    transposed: false,
    hasBias: false,
    roles,
    params: [{ name: `${path}.weight`, shape: [num, dim] }],
  };
}

export function rmsnorm(path: string, dim: number, layer?: number): ModuleInfo {
  return withLayer(
    {
      path,
      kind: "rmsnorm",
      inFeatures: dim,
      outFeatures: dim,
      transposed: false,
      hasBias: false,
      roles: ["norm"],
      params: [{ name: `${path}.weight`, shape: [dim] }],
    },
    layer,
  );
}

export function layernorm(path: string, dim: number, layer?: number): ModuleInfo {
  return withLayer(
    {
      path,
      kind: "layernorm",
      inFeatures: dim,
      outFeatures: dim,
      transposed: false,
      hasBias: true,
      roles: ["norm"],
      params: [
        { name: `${path}.weight`, shape: [dim] },
        { name: `${path}.bias`, shape: [dim] },
      ],
    },
    layer,
  );
}

/** Parameters as torch's model.parameters() counts them: a tied head adds nothing. */
export function countParams(modules: readonly ModuleInfo[]): number {
  let n = 0;
  for (const m of modules) for (const p of m.params) n += p.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** The fields every profile fills the same way once its modules are known. */
export function finishProfile(p: Omit<ModelProfile, "totalParams">): ModelProfile {
  return { ...p, totalParams: countParams(p.modules) };
}

function withLayer(m: ModuleInfo, layer: number | undefined): ModuleInfo {
  if (layer !== undefined) m.layer = layer;
  return m;
}
