// The CPU reference: one plain-loop definition of every op's forward and backward, the oracle
// that GPU kernels and gradient rules are tested against.

export * from './floats.js';
export * from './rng.js';
export * from './expr.js';
export * from './elementwise.js';
export * from './linear.js';
export * from './embedding.js';
export * from './norm.js';
export * from './rope.js';
export * from './attention.js';
export * from './swiglu.js';
export * from './dropout.js';
export * from './loss.js';
export * from './lora.js';
export * from './ia3.js';
export * from './bottleneck.js';
export * from './prompt-encoders.js';
export * from './gate.js';
export * from './optim.js';
export * from './adalora.js';
export * from './rank-allocator.js';
