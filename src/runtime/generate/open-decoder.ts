/** The decoder `pefc generate` and `pefc chat` run on: the WebGPU one (the default) or the CPU reference. */
import { ReferenceDecoder, type Decoder } from "./decoder.js";
import { GpuDecoder } from "./gpu-decoder.js";
import type { LoadedModel } from "./load.js";

export const GENERATE_DEVICES = ["gpu", "reference"] as const;
export type GenerateDevice = (typeof GENERATE_DEVICES)[number];

export function isGenerateDevice(s: string): s is GenerateDevice {
  return (GENERATE_DEVICES as readonly string[]).includes(s);
}

/** `tokens`: the longest sequence the decoder must hold (its KV cache is sized for it). */
export async function openDecoder(m: LoadedModel, device: GenerateDevice, tokens: number): Promise<Decoder> {
  if (device === "reference") return new ReferenceDecoder(m.graph, m.base ? new Map([...(await m.base.loadAll()), ...m.params]) : m.params);
  return GpuDecoder.create(m.graph, m.params, { tokens, maxPositions: m.profile.dims.maxPositions, ...(m.base ? { base: m.base } : {}) });
}
