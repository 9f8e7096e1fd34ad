/** AdaLoRA's rank allocation settings for a session: PEFT's update_and_allocate configuration. */
import type { AdaloraAllocation } from "../reference/executor.js";
import type { Session } from "./session.js";

export function adaloraAllocation(s: Session): AdaloraAllocation | undefined {
  const i = s.spec.methods.findIndex((m) => m.method === "adalora");
  const m = s.spec.methods[i];
  if (!m || m.method !== "adalora") return undefined;
  const o = m.options;
  return {
    config: { targetR: o.r, tinit: o.tinit, tfinal: o.tfinal, deltaT: o.delta_t, totalStep: o.total_step ?? s.totalSteps, beta1: o.beta1, beta2: o.beta2 },
    matrices: (s.ctx.targets[i]?.modules ?? []).map(({ module }) => ({
      name: module.path, A: `${module.path}.lora_A`, E: `${module.path}.lora_E`, B: `${module.path}.lora_B`,
    })),
  };
}
