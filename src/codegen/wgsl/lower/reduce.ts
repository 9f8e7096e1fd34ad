/** Lowerings of the reduce family (see types.ts for the contract). */
import { registerLowerings } from "./registry.js";

registerLowerings({});
