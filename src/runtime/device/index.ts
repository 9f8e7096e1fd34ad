// The WebGPU device layer: opening Dawn, buffers, pipelines, recording and timing dispatches.

export { openDevice, type OpenDeviceOptions } from "./open.js";
export { openDeviceOrReference } from "./or-reference.js";
export { Device } from "./device.js";
export type { AdapterSummary, DeviceInfo } from "./adapter-info.js";
export { DispatchRecorder, type BufferBinding } from "./recorder.js";
export { PipelineCache } from "./pipelines.js";
export { PassTimer, median, type TimingMethod } from "./timing.js";
export { noAdapterError, NoAdapterError, fallbackNotice, LLVMPIPE_INSTALL_COMMANDS } from "./no-adapter.js";
export { adapterName } from "./adapter-info.js";
export { instanceFlags, DEFAULT_ENABLE_TOGGLES, DEFAULT_DISABLE_TOGGLES, type InstanceToggles } from "./gpu.js";
export { chooseMatmulVariant, measureMatmul, type ChooseOptions, type VariantChoice } from "./choose-variant.js";
export { defaultKernelCacheFile, readChoice, writeChoice, type CachedChoice } from "./kernel-cache.js";
export { compileKernels, distinctKernels, type CompileOptions, type CompileReport } from "./compile.js";
export { keepMesaCacheWithPefc, mesaDiskCacheEnabled } from "./shader-cache.js";
export { spareLlvmpipeWorkers } from "./llvmpipe-threads.js";
export { pefcCacheDir } from "./kernel-cache.js";
export { paceDawnEvents, pacingActive, pacingDisabled, PACING_SPIN_MS } from "./event-pacing.js";
