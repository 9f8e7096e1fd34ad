// What a kernel generator may assume about the device, in one place (STYLE §9). The runtime fills
// this from the adapter; codegen only reads it, so generators stay pure and testable without a GPU.

export interface DeviceCaps {
  /** `shader-f16` is enabled on the device: kernels may store operands as f16. */
  f16: boolean;
  /** `subgroups` is enabled. */
  subgroups: boolean;
  /**
   * The subgroup size when the adapter runs one fixed size (llvmpipe: its SIMD width, 8 on AVX2),
   * else 0. Kernels that share loads across a subgroup are generated for exactly this size.
   */
  subgroupSize: number;
  maxWorkgroupStorageBytes: number;
  maxInvocationsPerWorkgroup: number;
  maxWorkgroupSizeX: number;
  maxWorkgroupSizeY: number;
  maxWorkgroupsPerDimension: number;
  maxStorageBindingBytes: number;
  /** Storage buffers one kernel may bind; absent: 8, what every WebGPU device allows. */
  maxStorageBuffersPerStage?: number;
  /** A software adapter (llvmpipe, SwiftShader): lanes are SIMD lanes of a CPU core. */
  isCpu: boolean;
}

/** The limits every WebGPU device guarantees, no optional features. */
export const BASELINE_CAPS: DeviceCaps = {
  f16: false,
  subgroups: false,
  subgroupSize: 0,
  maxWorkgroupStorageBytes: 16384,
  maxInvocationsPerWorkgroup: 256,
  maxWorkgroupSizeX: 256,
  maxWorkgroupSizeY: 256,
  maxWorkgroupsPerDimension: 65535,
  maxStorageBindingBytes: 134217728,
  isCpu: false,
};

/**
 * Lanes that share loads every lane needs (split the loads, then subgroupBroadcast): the subgroup
 * size on CPU adapters that run one fixed size from 4 to 32 lanes (llvmpipe: 8, or 16 with
 * 512-bit vectors), where a load from a non-constant offset is done lane by lane; 0 elsewhere.
 */
export function sharedLoadLanes(caps: DeviceCaps): number {
  const sg = caps.isCpu && caps.subgroups ? caps.subgroupSize : 0;
  return sg >= 4 && sg <= 32 ? sg : 0;
}

/** Storage buffers one kernel may bind on this device. */
export function storageBufferLimit(caps: DeviceCaps): number {
  return caps.maxStorageBuffersPerStage ?? 8;
}

/** `caps` with the storage-binding limit lowered to `maxBindingBytes` when given (planning for a smaller device). */
export function capsWithin(caps: DeviceCaps, maxBindingBytes: number | undefined): DeviceCaps {
  return maxBindingBytes === undefined ? caps : { ...caps, maxStorageBindingBytes: Math.min(caps.maxStorageBindingBytes, maxBindingBytes) };
}

/**
 * A model the device cannot hold as planned (a trainable tensor over the largest storage binding):
 * the user's choice to change, not a bug, so the CLI reports it like a bad input file.
 */
export class DeviceLimitError extends Error {
  constructor(
    message: string,
    readonly tensor: string,
  ) {
    super(message);
    this.name = "DeviceLimitError";
  }
}
