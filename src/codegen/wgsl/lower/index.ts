/** Every op lowering, registered by family. Import this module to fill the registry. */
import "./elementwise.js";
import "./norm.js";
import "./rope.js";
import "./embedding.js";
import "./loss.js";
import "./movement.js";
import "./reduce.js";
import "./attention.js";
import "./optim.js";
import "./linear.js";
import "./decode.js";

export { lowering, loweredOps, registerLowerings } from "./registry.js";
export * from "./types.js";
