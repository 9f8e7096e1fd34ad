/**
 * The decoder `pefc generate` and `pefc chat` run on: the WebGPU one or the CPU reference. As in
 * `pefc run`, no --device means the WebGPU device when an adapter exists and otherwise the CPU
 * reference, said in run's one line; --device gpu insists (P801 without an adapter).
 */
import { openDeviceOrReference, type Device } from "../device/index.js";
import { ReferenceDecoder, type Decoder } from "./decoder.js";
import { GpuDecoder } from "./gpu-decoder.js";
import type { LoadedModel } from "./load.js";

export const GENERATE_DEVICES = ["gpu", "reference"] as const;
export type GenerateDevice = (typeof GENERATE_DEVICES)[number];

export function isGenerateDevice(s: string): s is GenerateDevice {
  return (GENERATE_DEVICES as readonly string[]).includes(s);
}

/** Where decoding runs; `gpu` is the opened device, which the caller destroys when done. */
export type DecodeOn = { device: "gpu"; gpu: Device } | { device: "reference" };

/**
 * Opens the device before the model is loaded, so a machine without one learns so at once and the
 * model is loaded for the decoder that will run it. `asked`: the --device given, if any.
 */
export async function chooseDecodeDevice(asked: GenerateDevice | undefined, notice: (line: string) => void): Promise<DecodeOn> {
  const gpu = await openDeviceOrReference(asked, notice);
  return gpu ? { device: "gpu", gpu } : { device: "reference" };
}

/** `tokens`: the longest sequence the decoder must hold (its KV cache is sized for it). */
export async function openDecoder(m: LoadedModel, on: DecodeOn, tokens: number): Promise<Decoder> {
  if (on.device === "reference") return new ReferenceDecoder(m.graph, m.base ? new Map([...(await m.base.loadAll()), ...m.params]) : m.params);
  return GpuDecoder.create(m.graph, m.params, { tokens, maxPositions: m.profile.dims.maxPositions, device: on.gpu, ...(m.base ? { base: m.base } : {}) });
}
