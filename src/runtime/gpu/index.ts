// Running Programs on a WebGPU device, and the training backend built on that.

export { ProgramExecutor } from "./executor.js";
export { GpuBackend, rngKeys, type GpuBackendOptions } from "./backend.js";
export { openGpuBackend, longestExample } from "./open.js";
export { padBatch } from "./pad.js";
