/**
 * The tensors file of an adapter folder. pefc writes adapter_model.safetensors; PEFT writes that
 * too by default, but `save_pretrained(..., safe_serialization=False)` (the default of older PEFT
 * releases) writes adapter_model.bin, a torch.save archive of the same state dict under the same
 * keys. Both are opened through the checkpoint readers the base weights use (io/checkpoint.ts),
 * so a .bin gets the same strict pickle allow-list and the same named errors as a model's shards.
 * When a folder holds both, safetensors is read, as PEFT's own loader prefers it.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { openSafetensorsFile, openTorchFile, type Checkpoint } from "../io/checkpoint.js";
import { UserError } from "../io/errors.js";
import { CONFIG_FILE, WEIGHTS_FILE } from "./save.js";

export const BIN_WEIGHTS_FILE = "adapter_model.bin";

/** The folder's adapter tensors, from adapter_model.safetensors or else adapter_model.bin. */
export async function openAdapterWeights(dir: string): Promise<Checkpoint> {
  const safetensors = join(dir, WEIGHTS_FILE);
  if (await isFile(safetensors)) return openSafetensorsFile(safetensors);
  const bin = join(dir, BIN_WEIGHTS_FILE);
  if (await isFile(bin)) return openTorchFile(bin);
  throw new UserError(`${safetensors}: missing; an adapter folder holds ${CONFIG_FILE} and ${WEIGHTS_FILE} (or PEFT's ${BIN_WEIGHTS_FILE})`, { file: safetensors });
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isFile(), () => false);
}
