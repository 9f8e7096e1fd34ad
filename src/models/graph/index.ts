/**
 * The base forward graph of a profiled model: input_ids, labels, positions -> logits -> loss, every
 * parameter named as in profile.modules and frozen (origin "base"). Methods are injected later by passes.
 */
import type { Graph } from "../../ir/graph.js";
import type { ModelProfile } from "../types.js";
import { buildChatglm2, chatglm2Unsupported } from "./chatglm2.js";
import type { BaseGraphOptions } from "./common.js";
import { buildGpt2, gpt2Unsupported } from "./gpt2.js";
import { buildLlama, llamaUnsupported } from "./llama.js";

export type { BaseGraphOptions } from "./common.js";
export { INPUT_IDS, LABELS, LOGITS, LOSS, POSITIONS } from "./common.js";

/**
 * Why the base graph cannot be built for this profile (a config feature not modelled), or undefined.
 * The checker turns a reason into a diagnostic; buildBaseGraph throws on one.
 */
export function baseGraphUnsupported(profile: ModelProfile): string | undefined {
  switch (profile.arch) {
    case "llama":
      return llamaUnsupported(profile);
    case "chatglm2":
      return chatglm2Unsupported(profile);
    case "gpt2":
      return gpt2Unsupported(profile);
  }
}

export function buildBaseGraph(profile: ModelProfile, opts: BaseGraphOptions = {}): Graph {
  const why = baseGraphUnsupported(profile);
  if (why) throw new Error(`${profile.source}: ${why}`);
  switch (profile.arch) {
    case "llama":
      return buildLlama(profile, opts);
    case "chatglm2":
      return buildChatglm2(profile, opts);
    case "gpt2":
      return buildGpt2(profile, opts);
  }
}
