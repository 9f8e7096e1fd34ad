// The WGSL code generators: plain data in, plain data (KernelSpec) out, no device.

export * from "./caps.js";
export * from "./kernel.js";
export * from "./render.js";
export * from "./matmul/index.js";
export * from "./linear.js";
