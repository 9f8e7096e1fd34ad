/** AdaLoRA's rank allocation settings for a session: PEFT's update_and_allocate configuration. */
import type { AdaloraAllocation } from "../reference/executor.js";
import { budgetSchedule } from "../reference/rank-allocator.js";
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

/**
 * One log line: what update_and_allocate does over `steps` optimizer steps, numbered as PEFT's loop
 * numbers global_step (0 after the first optimizer step), with the budget of every masking.
 */
export function adaloraScheduleText(a: AdaloraAllocation, initR: number, steps: number): string {
  const c = a.config;
  const initBgt = initR * a.matrices.length;
  const targetBgt = c.targetR * a.matrices.length;
  const end = c.totalStep - c.tfinal;
  const masks: string[] = [];
  for (let t = c.tinit + 1; t < Math.min(end, steps); t++) {
    const { budget, mask } = budgetSchedule(t, { initBgt, targetBgt, ...c });
    if (mask) masks.push(`${t} (${budget})`);
  }
  const parts = [`adalora: budget ${initBgt} -> ${targetBgt} singular values; by PEFT's global_step (optimizer step - 1): ${Math.min(c.tinit, steps - 1)} and below score only`];
  if (masks.length) parts.push(`masks at ${masks.join(", ")}`);
  if (end < steps) parts.push(`final mask at ${end} (${budgetSchedule(end, { initBgt, targetBgt, ...c }).budget}), scores reset`);
  if (end + 1 < steps) parts.push(`re-applied at ${end + 1}-${steps - 1}`);
  return parts.join("; ");
}
