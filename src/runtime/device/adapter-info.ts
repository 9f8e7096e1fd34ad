// What pefc records about an adapter: identity (for the kernel-choice cache and reports), the
// enabled features and limits, and the DeviceCaps that codegen sees.

import type { DeviceCaps } from "../../codegen/wgsl/caps.js";

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  /** Includes the driver name and version on Vulkan (e.g. "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)"). */
  description: string;
  isFallback: boolean;
  /** A software rasterizer: lanes are SIMD lanes of CPU cores. */
  isCpu: boolean;
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

export interface DeviceInfo {
  adapter: AdapterSummary;
  features: string[];
  limits: Record<string, number>;
  caps: DeviceCaps;
  /** Flags passed to create(). */
  flags: string[];
  /** Identifies adapter + driver, e.g. for caches of per-device measurements. */
  key: string;
}

export function summarizeAdapter(a: GPUAdapter): AdapterSummary {
  const info = a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMinSize?: number; subgroupMaxSize?: number };
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  const isFallback = info.isFallbackAdapter === true;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallback,
    isCpu: isFallback || /llvmpipe|lavapipe|swiftshader|softpipe/i.test(text),
    subgroupMinSize: info.subgroupMinSize ?? 0,
    subgroupMaxSize: info.subgroupMaxSize ?? 0,
  };
}

const LIMIT_NAMES = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxBindGroups",
  "minStorageBufferOffsetAlignment",
] as const;

/** The limits pefc raises to the adapter's maximum (WebGPU hands out spec minimums otherwise). */
export const REQUESTED_LIMITS: readonly (typeof LIMIT_NAMES)[number][] = LIMIT_NAMES.filter((n) => n !== "minStorageBufferOffsetAlignment");

export function readLimits(l: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of LIMIT_NAMES) out[n] = l[n];
  return out;
}

export function capsFrom(features: readonly string[], limits: Record<string, number>, adapter: AdapterSummary): DeviceCaps {
  return {
    f16: features.includes("shader-f16"),
    subgroups: features.includes("subgroups"),
    subgroupSize: features.includes("subgroups") && adapter.subgroupMinSize === adapter.subgroupMaxSize ? adapter.subgroupMinSize : 0,
    maxWorkgroupStorageBytes: limits["maxComputeWorkgroupStorageSize"]!,
    maxInvocationsPerWorkgroup: limits["maxComputeInvocationsPerWorkgroup"]!,
    maxWorkgroupSizeX: limits["maxComputeWorkgroupSizeX"]!,
    maxWorkgroupSizeY: limits["maxComputeWorkgroupSizeY"]!,
    maxWorkgroupsPerDimension: limits["maxComputeWorkgroupsPerDimension"]!,
    maxStorageBindingBytes: limits["maxStorageBufferBindingSize"]!,
    maxStorageBuffersPerStage: limits["maxStorageBuffersPerShaderStage"]!,
    isCpu: adapter.isCpu,
  };
}

export function deviceKey(a: AdapterSummary): string {
  return [a.vendor, a.architecture, a.device, a.description].join("|");
}

/** The adapter as a user knows it, for banners: "llvmpipe (Mesa CPU Vulkan)", "NVIDIA H100 80GB HBM3". */
export function adapterName(a: Pick<AdapterSummary, "vendor" | "device" | "description">): string {
  const text = `${a.device} ${a.description}`;
  if (/llvmpipe/i.test(text)) return "llvmpipe (Mesa CPU Vulkan)";
  if (/lavapipe/i.test(text)) return "lavapipe (Mesa CPU Vulkan)";
  if (/swiftshader/i.test(text)) return "SwiftShader (CPU Vulkan)";
  const head = a.description.split(":")[0]!.trim();
  if (head && head.toLowerCase() !== a.vendor.toLowerCase() && !/^[\d.]+$/.test(head)) return head;
  const words = a.device.split(/[-_\s]+/).filter(Boolean);
  if (words.length === 0) return a.vendor || "WebGPU adapter";
  // Dawn reports GPU names lowercased and hyphenated ("nvidia-h100-80gb-hbm3"); vendors print them upper case.
  return words.map((w) => (/nvidia|amd|intel/i.test(a.vendor) ? w.toUpperCase() : w)).join(" ");
}
