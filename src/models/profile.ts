/**
 * config.json → ModelProfile, by model_type. The profile is everything the checker and the IR builder
 * need to know about a model before any weight is read.
 */
import { CHATGLM_MODEL_TYPES, chatglm2Profile } from "./profiles/chatglm2.js";
import { GPT2_MODEL_TYPES, gpt2Profile } from "./profiles/gpt2.js";
import { LLAMA_MODEL_TYPES, llamaProfile } from "./profiles/llama.js";
import type { ModelProfile } from "./types.js";

type ProfileBuilder = (config: Record<string, unknown>, source: string) => ModelProfile | string;

const BUILDERS: ReadonlyMap<string, ProfileBuilder> = new Map<string, ProfileBuilder>([
  ...LLAMA_MODEL_TYPES.map((t): [string, ProfileBuilder] => [t, llamaProfile]),
  ...CHATGLM_MODEL_TYPES.map((t): [string, ProfileBuilder] => [t, chatglm2Profile]),
  ...GPT2_MODEL_TYPES.map((t): [string, ProfileBuilder] => [t, gpt2Profile]),
]);

/** The model_type values pefc has a profile for. */
export function knownModelTypes(): string[] {
  return [...BUILDERS.keys()];
}

/** A profile, or the reason the config cannot make one (unknown model_type, a missing or bad key). */
export function profileFromConfig(config: Record<string, unknown>, source: string): ModelProfile | string {
  const modelType = config["model_type"];
  if (typeof modelType !== "string") return "config.json has no model_type";
  const build = BUILDERS.get(modelType);
  if (!build) return `unsupported model_type '${modelType}'; pefc knows ${knownModelTypes().join(", ")}`;
  return build(config, source);
}
