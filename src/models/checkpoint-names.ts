/**
 * Maps a tensor name found in a checkpoint file onto the profile's parameter names. Most checkpoints
 * name parameters exactly as the profile does; the exceptions are files saved from a bare base model
 * (GPT-2's `h.0.attn.c_attn.weight` for `transformer.h.0.attn.c_attn.weight`), buffers stored beside
 * the parameters (rotary inv_freq, GPT-2's causal mask), and a tied head written out twice.
 */
import type { ModelProfile, ParamInfo } from "./types.js";

export type TensorName =
  | { kind: "param"; name: string; shape: number[] }
  /** A buffer the model recomputes; a loader skips it. */
  | { kind: "buffer"; name: string; shape: number[] }
  /** The tied head's copy of the embedding weight; a loader skips it. */
  | { kind: "tied"; name: string; tiedTo: string };

export interface NameIndex {
  lookup(tensorName: string): TensorName | undefined;
}

export function checkpointNames(profile: ModelProfile): NameIndex {
  const params = new Map<string, ParamInfo>();
  const tied = new Map<string, string>();
  for (const m of profile.modules) {
    for (const p of m.params) params.set(p.name, p);
    if (m.tiedTo !== undefined) tied.set(`${m.path}.weight`, m.tiedTo);
  }
  const buffers = new Map((profile.buffers ?? []).map((b) => [b.name, b]));
  const find = (name: string): TensorName | undefined => {
    const p = params.get(name);
    if (p) return { kind: "param", name, shape: p.shape };
    const b = buffers.get(name);
    if (b) return { kind: "buffer", name, shape: b.shape };
    const t = tied.get(name);
    if (t !== undefined) return { kind: "tied", name, tiedTo: t };
    return undefined;
  };
  const prefix = profile.checkpointPrefix;
  return {
    lookup(tensorName) {
      return find(tensorName) ?? (prefix !== undefined && !tensorName.startsWith(prefix) ? find(prefix + tensorName) : undefined);
    },
  };
}
