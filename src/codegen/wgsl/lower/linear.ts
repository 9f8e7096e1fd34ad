/** Lowerings of the linear family (see types.ts for the contract). */
import { registerLowerings } from "./registry.js";

registerLowerings({});
