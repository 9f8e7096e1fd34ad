/**
 * How a training-step graph names what the runtime feeds and reads back, shared by the passes that
 * build it and the executors that run it: gradients `grad.<param>`, optimizer state as graph
 * inputs `optim.<slot>.<param>`, and every updated tensor as the output `next.<name>`.
 */

export const gradName = (param: string): string => `grad.${param}`;
export const clippedName = (param: string): string => `${gradName(param)}.clipped`;
export const GRAD_NORM = "grad_norm";
export const LR_INPUT = "optim.lr";
export const STEP_INPUT = "optim.step";
export type StateSlot = "m" | "v" | "momentum";
export const stateName = (slot: StateSlot, param: string): string => `optim.${slot}.${param}`;
export const nextName = (name: string): string => `next.${name}`;

/** Ops that run once per optimizer step, after every micro-batch's gradients are summed. */
export const UPDATE_OPS: ReadonlySet<string> = new Set(["clip_grad_norm", "sgd_update", "adam_update", "adamw_update"]);
