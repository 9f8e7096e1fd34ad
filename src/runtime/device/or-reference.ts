/**
 * Which device a command runs on: `--device reference` the CPU reference; `--device gpu` the
 * WebGPU device or P801; no --device the WebGPU device when there is one, else the CPU reference,
 * said in one line through `notice`.
 */
import type { Device } from "./device.js";
import { fallbackNotice, NoAdapterError } from "./no-adapter.js";
import { openDevice } from "./open.js";

/** The opened WebGPU device, or undefined for the CPU reference. */
export async function openDeviceOrReference(asked: "gpu" | "reference" | undefined, notice: (line: string) => void): Promise<Device | undefined> {
  if (asked === "reference") return undefined;
  try {
    return await openDevice();
  } catch (e) {
    if (!(e instanceof NoAdapterError) || asked === "gpu") throw e;
    notice(fallbackNotice());
    return undefined;
  }
}
