// Adapters on disk: PEFT's folder layout (or pefc's own when PEFT has no equivalent), loading one
// back for `init from`, merging into base weights, and writing merged Hugging Face checkpoints.
export { adapterLayout, adapterParams, prefixWidth, PEFT_PREFIX, PROMPT_KEY, type AdapterLayout, type PeftType, type TensorEntry } from "./layout.js";
export { adapterConfig, peftConfigForSpec, PEFC_FORMAT_VERSION } from "./config.js";
export { PEFT_CONFIG_FIELDS, peftConfigOf } from "./peft-fields.js";
export { adapterFiles, saveAdapter, CONFIG_FILE, WEIGHTS_FILE, type AdapterExtra, type AdapterFiles, type SaveAdapterOptions } from "./save.js";
export { loadAdapter, type LoadAdapterOptions } from "./load.js";
export { mergeAdapter, type MergeOptions } from "./merge.js";
export { hfCheckpointFiles, writeHfCheckpoint, withShapes, tiedDuplicates, type HfTensor, type HfCheckpointOptions } from "./hf-checkpoint.js";
export { peftTargets, peftMatches, peftFeedforward, patternKey, patternMatch, type PeftTargets } from "./peft-targets.js";
export { loraModuleSettings, type LoraModuleSettings } from "./lora-settings.js";
export { pyJsonDumps, pyFloat, pyFloatRepr, PyFloat, type PyJson } from "./py-json.js";
export { adapterSpec, peftStatement } from "./spec-from-adapter.js";
