/**
 * The slot for PyTorch pickle checkpoints (pytorch_model.bin). pefc reads safetensors only in
 * this build; a reader for .bin files plugs its fault cases in here: truncated zip archives and
 * pickles, storages smaller than their tensors claim, and pickles naming any global outside the
 * tensor-rebuilding set (each a UserError naming the file and tensor, never code run).
 */
import type { FaultOptions } from "./lib/options.js";
import type { Tally } from "./lib/tally.js";

export async function binCases(t: Tally, _o: FaultOptions): Promise<void> {
  t.notes.push(".bin cases: no pickle reader in this build (slot: faults/checkpoints-bin.ts)");
}
