// Graph → Program (plain data: kernels, buffers, command lists); no device.

export * from "./types.js";
export { buildProgram, type BuildOptions, type ForwardRequest } from "./build.js";
export { programWgsl, programPlan, dispatchesPerStep } from "./describe.js";
export { evalDim, valueShapes } from "./shapes.js";
export { chooseF16Weights } from "./precision.js";
export { emitProgram, defaultSeq } from "./emit.js";
