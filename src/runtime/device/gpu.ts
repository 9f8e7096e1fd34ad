// The one process-wide handle on Dawn. The object `create()` returns must stay reachable for as
// long as any device made from it is used: when it is garbage-collected, dawn.node crashes at
// random (segfaults, futex and mutex errors) in ways that look like driver bugs. So instances live
// in a module-level map for the life of the process and are never dropped.

import { create, globals } from "webgpu";
import { spareLlvmpipeWorkers } from "./llvmpipe-threads.js";
import { keepMesaCacheWithPefc } from "./shader-cache.js";

let globalsInstalled = false;
const instances = new Map<string, GPU>();

/**
 * Toggles every pefc instance passes. `vulkan_enable_f16_on_nvidia` lets NVIDIA drivers older than
 * 615.71 expose shader-f16 (no effect elsewhere); timestamps are unquantized so kernel timings
 * below 65 µs mean something.
 */
export const DEFAULT_ENABLE_TOGGLES: readonly string[] = ["vulkan_enable_f16_on_nvidia"];
export const DEFAULT_DISABLE_TOGGLES: readonly string[] = ["timestamp_quantization"];

export interface InstanceToggles {
  enable?: readonly string[];
  disable?: readonly string[];
}

export function instanceFlags(t: InstanceToggles = {}): string[] {
  const enable = [...new Set([...DEFAULT_ENABLE_TOGGLES, ...(t.enable ?? [])])];
  const disable = [...new Set([...DEFAULT_DISABLE_TOGGLES, ...(t.disable ?? [])])];
  const flags: string[] = [];
  if (enable.length) flags.push(`enable-dawn-features=${enable.join(",")}`);
  if (disable.length) flags.push(`disable-dawn-features=${disable.join(",")}`);
  return flags;
}

/** The Dawn instance for these flags, created once and kept for the life of the process. */
export function gpuInstance(flags: readonly string[]): GPU {
  if (!globalsInstalled) {
    // GPUBufferUsage, GPUMapMode... are globals in a browser; dawn.node hands them over here.
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  const key = flags.join(" ");
  let gpu = instances.get(key);
  if (!gpu) {
    if (instances.size === 0) {
      keepMesaCacheWithPefc();
      spareLlvmpipeWorkers();
    }
    gpu = create([...flags]);
    instances.set(key, gpu);
  }
  return gpu;
}
