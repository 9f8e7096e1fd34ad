/** Lowerings of the attention family (see types.ts for the contract). */
import { registerLowerings } from "./registry.js";

registerLowerings({});
