// An eval split taken from the train examples (`data eval { split = 5%; }`). Which examples go to
// eval is a seeded selection, not the file's tail, so a sorted file still gets a representative
// eval set: the first k positions of permutation(n, holdoutKey(seed)) are held out. Both sides
// keep file order. A share takes ceil(share * n) examples, as Hugging Face's train_test_split does.

import type { DataSpec } from "../../check/spec.js";
import { UserError } from "../io/errors.js";
import { holdoutKey, permutation } from "./order.js";
import type { Example } from "./types.js";

export function holdOut(examples: readonly Example[], holdout: NonNullable<DataSpec["holdout"]>, seed: number): { train: Example[]; eval: Example[] } {
  const n = examples.length;
  const k = "share" in holdout ? Math.ceil(holdout.share * n) : holdout.count;
  const what = "share" in holdout ? `${+(holdout.share * 100).toFixed(4)}% of ${n} records (${k})` : `${k} records`;
  if (k < 1) throw new UserError(`the eval split (${what}) holds out no record; raise the split or give an eval file`);
  if (k >= n) throw new UserError(`the eval split (${what}) leaves no train records out of ${n}; lower the split`);
  const perm = permutation(n, holdoutKey(seed));
  const held = new Uint8Array(n);
  for (let i = 0; i < k; i++) held[perm[i]!] = 1;
  const train: Example[] = [];
  const evalSet: Example[] = [];
  examples.forEach((ex, i) => (held[i] ? evalSet : train).push(ex));
  return { train, eval: evalSet };
}
