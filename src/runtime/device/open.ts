// Opening the device: pick the adapter, enable the optional features pefc uses when present
// (shader-f16, subgroups, timestamp-query), and raise the limits that matter for large models
// to the adapter's maximum, since WebGPU otherwise hands out the spec minimums.

import { capsFrom, deviceKey, readLimits, REQUESTED_LIMITS, summarizeAdapter, type DeviceInfo } from "./adapter-info.js";
import { Device } from "./device.js";
import { gpuInstance, instanceFlags, type InstanceToggles } from "./gpu.js";
import { noAdapterError } from "./no-adapter.js";

export interface OpenDeviceOptions {
  toggles?: InstanceToggles;
  /** Further create() flags, e.g. `backend=vulkan`. */
  flags?: readonly string[];
  powerPreference?: GPUPowerPreference;
  /** Ask for these optional features when the adapter has them (default: all three). */
  f16?: boolean;
  subgroups?: boolean;
  timestamps?: boolean;
}

export async function openDevice(opts: OpenDeviceOptions = {}): Promise<Device> {
  const flags = [...instanceFlags(opts.toggles), ...(opts.flags ?? [])];
  const gpu = gpuInstance(flags);
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
  } catch (e) {
    throw noAdapterError(firstLine((e as Error).message));
  }
  if (!adapter) throw noAdapterError();

  const wanted: GPUFeatureName[] = [];
  if (opts.f16 !== false) wanted.push("shader-f16");
  if (opts.subgroups !== false) wanted.push("subgroups");
  if (opts.timestamps !== false) wanted.push("timestamp-query");
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const n of REQUESTED_LIMITS) requiredLimits[n] = adapter.limits[n];

  const summary = summarizeAdapter(adapter);
  const gpuDevice = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: "pefc" });
  const features = [...gpuDevice.features].map(String).sort();
  const limits = readLimits(gpuDevice.limits);
  const info: DeviceInfo = {
    adapter: summary,
    features,
    limits,
    caps: capsFrom(features, limits, summary),
    flags,
    key: deviceKey(summary),
  };
  return new Device(gpuDevice, info, gpu);
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}
