/** Case `i` of the spec fuzzer under `seed`: which file, which mutation, the damaged bytes. */
import { MUTATIONS, mutate, type Mutation } from "./lib/mutate.js";
import { caseSeed, pick, rng } from "./lib/rng.js";
import type { SpecSource } from "./lib/spec-sources.js";

export interface SpecCase {
  source: SpecSource;
  mutation: Mutation;
  bytes: string | Uint8Array;
}

export function specCase(sources: readonly SpecSource[], seed: number, i: number): SpecCase {
  const r = rng(caseSeed(seed, i));
  const source = pick(r, sources);
  const mutation = pick(r, MUTATIONS);
  let bytes = mutate(source.text, mutation, r);
  // A second edit of another kind now and then: faults come in pairs in real files too.
  if (typeof bytes === "string" && r() < 0.25) bytes = mutate(bytes, pick(r, MUTATIONS), r);
  return { source, mutation, bytes };
}
