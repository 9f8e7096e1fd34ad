/**
 * The models layer's public surface, so the checker, the IR builder and the runtime import one place.
 */
export { builtinConfig, builtinHasWeights, builtinNames, initBuiltinWeights } from "./builtin.js";
export { checkpointNames, type NameIndex, type TensorName } from "./checkpoint-names.js";
export { loadProfile, type LoadContext, type LoadResult } from "./load.js";
export { knownModelTypes, profileFromConfig } from "./profile.js";
export { linearLeafNames, resolveSelector, roleNames, type Match, type SelectContext, type SelectResult } from "./select.js";
export { templateByName, templateNames, TEMPLATE_NAMES, type TemplateName } from "./templates.js";
export type * from "./types.js";
