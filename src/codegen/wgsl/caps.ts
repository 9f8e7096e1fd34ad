// What a kernel generator may assume about the device, in one place (STYLE §9). The runtime fills
// this from the adapter; codegen only reads it, so generators stay pure and testable without a GPU.

export interface DeviceCaps {
  /** `shader-f16` is enabled on the device: kernels may store operands as f16. */
  f16: boolean;
  /** `subgroups` is enabled. */
  subgroups: boolean;
  maxWorkgroupStorageBytes: number;
  maxInvocationsPerWorkgroup: number;
  maxWorkgroupSizeX: number;
  maxWorkgroupSizeY: number;
  maxWorkgroupsPerDimension: number;
  maxStorageBindingBytes: number;
  /** A software adapter (llvmpipe, SwiftShader): lanes are SIMD lanes of a CPU core. */
  isCpu: boolean;
}

/** The limits every WebGPU device guarantees, no optional features. */
export const BASELINE_CAPS: DeviceCaps = {
  f16: false,
  subgroups: false,
  maxWorkgroupStorageBytes: 16384,
  maxInvocationsPerWorkgroup: 256,
  maxWorkgroupSizeX: 256,
  maxWorkgroupSizeY: 256,
  maxWorkgroupsPerDimension: 65535,
  maxStorageBindingBytes: 134217728,
  isCpu: false,
};
