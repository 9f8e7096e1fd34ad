/**
 * The optimizer step as one dispatch over the arenas (kernels/optim/fused.ts): every parameter,
 * its summed gradient and its state sit at the same element offset of their arenas, so one kernel
 * updates all of them in place, and clipping costs the two small norm kernels plus a third that
 * folds their partials. It replaces one update op per tensor and a copy home for each of its
 * outputs (stories260K LoRA: 82 dispatches and 60 copies become 4 dispatches).
 *
 * Taken when the graph's update ops allow it: one optimizer kind with one set of hyperparameters,
 * at most one clip_grad_norm over every gradient, and each role in one arena with matching offsets
 * (always so unless the trainable tensors exceed one storage binding); else undefined, and the
 * caller plans the ops one by one.
 */
import type { Op } from "../../../ir/index.js";
import { gradName, LR_INPUT, stateName, STEP_INPUT, type StateSlot } from "../../../ir/step-names.js";
import type { DeviceCaps } from "../caps.js";
import type { KernelSpec } from "../kernel.js";
import { FUSED_NAMES, fusedGradNormKernels, fusedOptimizerKernel, type FusedHyper, type FusedKind, type ParamSegment } from "../kernels/optim/index.js";
import type { BufferDecl, BufferRole, Command, Slice, TensorLoc } from "./types.js";

/** What the planner needs of the program builder. */
export interface UpdateHost {
  caps: DeviceCaps;
  buffers: readonly BufferDecl[];
  persistent: ReadonlyMap<string, TensorLoc>;
  buffer(bytes: number, role: BufferRole, label: string): BufferDecl;
  kernel(spec: KernelSpec): number;
}

export interface FusedUpdate {
  update: Command[];
  clipped: Record<string, Slice>;
  gradNorm?: Slice;
}

const KINDS: Record<string, FusedKind> = { adam_update: "adam", adamw_update: "adamw", sgd_update: "sgd" };

const whole = (b: BufferDecl): Slice => ({ buffer: b.id, offset: 0, bytes: b.bytes });

/** The one buffer all `slices` lie in, or undefined. */
function oneBuffer(slices: readonly Slice[]): number | undefined {
  const b = slices[0]?.buffer;
  return slices.every((s) => s.buffer === b) ? b : undefined;
}

export function planFusedUpdate(host: UpdateHost, updateOps: readonly Op[], grads: Readonly<Record<string, Slice>>): FusedUpdate | undefined {
  const clipOps = updateOps.filter((op) => op.op === "clip_grad_norm");
  const ops = updateOps.filter((op) => op.op !== "clip_grad_norm");
  const kind = KINDS[ops[0]?.op ?? ""];
  if (!kind || clipOps.length > 1 || ops.some((op) => op.op !== ops[0]!.op)) return undefined;
  const attrs = JSON.stringify(ops[0]!.attrs);
  if (ops.some((op) => JSON.stringify(op.attrs) !== attrs)) return undefined;
  const clip = clipOps[0];
  const names = ops.map((op) => op.inputs[0]!);
  if (names.length !== Object.keys(grads).length || names.some((p) => !grads[p])) return undefined;
  if (clip && (clip.inputs.length !== names.length || clip.inputs.some((v) => !grads[v.slice(5)] || v !== gradName(v.slice(5))))) return undefined;

  const a = ops[0]!.attrs;
  const momentum = kind === "sgd" ? Number(a["momentum"]) : 0;
  const slots: StateSlot[] = kind === "sgd" ? (momentum !== 0 ? ["momentum"] : []) : ["m", "v"];
  const loc = (name: string): TensorLoc | undefined => host.persistent.get(name);
  const params = names.map(loc);
  const states = slots.map((s) => names.map((p) => loc(stateName(s, p))));
  if (params.some((l) => !l) || states.some((ls) => ls.some((l) => !l))) return undefined;
  const gradSlices = names.map((p) => grads[p]!);
  const roles = [params as TensorLoc[], gradSlices, ...(states as TensorLoc[][])];
  const bufs = roles.map(oneBuffer);
  if (bufs.some((b) => b === undefined)) return undefined;
  // Same element offset in every arena.
  if (names.some((_, i) => roles.some((r) => r[i]!.offset !== params[i]!.offset))) return undefined;
  const segments: ParamSegment[] = params.map((l) => ({ offset: l!.offset / 4, count: l!.bytes / 4 }));

  const lr = loc(LR_INPUT);
  const step = loc(STEP_INPUT);
  if (!lr || !step) return undefined;
  const N = FUSED_NAMES;
  const buf = (id: number): Slice => whole(host.buffers[id]!);
  const bindings: Record<string, Slice> = { [N.params]: buf(bufs[0]!), [N.grads]: buf(bufs[1]!), [N.lr]: lr, [N.step]: step };
  slots.forEach((s, k) => (bindings[s === "m" ? N.m : s === "v" ? N.v : N.momentum] = buf(bufs[2 + k]!)));

  const update: Command[] = [];
  const dispatch = (spec: KernelSpec, b: Record<string, Slice>, label: string): void => {
    const picked = Object.fromEntries(spec.bindings.map((x) => [x.name, b[x.name]!]));
    update.push({ kind: "dispatch", kernel: host.kernel(spec), label, op: "fused_update", bindings: picked, workgroups: [...spec.dispatch] });
  };
  const clipped: Record<string, Slice> = {};
  let gradNorm: Slice | undefined;
  if (clip) {
    const norm = fusedGradNormKernels(segments, Number(clip.attrs["max_norm"]), host.caps);
    const partials = host.buffer(norm.partialsBytes, "activation", "grad norm partials");
    const normBuf = host.buffer(4, "activation", "grad norm");
    const coef = host.buffer(4, "activation", "clip coefficient");
    const arena = host.buffer(host.buffers[bufs[1]!]!.bytes, "grad", "grad.clipped#0");
    Object.assign(bindings, { [N.partials]: whole(partials), [N.norm]: whole(normBuf), [N.coef]: whole(coef), [N.clipped]: whole(arena) });
    for (const k of norm.kernels) dispatch(k, bindings, "clip_grad_norm");
    names.forEach((p, i) => (clipped[p] = { buffer: arena.id, offset: gradSlices[i]!.offset, bytes: gradSlices[i]!.bytes }));
    gradNorm = whole(normBuf);
  }
  const hyper: FusedHyper =
    kind === "sgd"
      ? { momentum, dampening: Number(a["dampening"]), weightDecay: Number(a["weight_decay"]), nesterov: a["nesterov"] === true }
      : { beta1: Number(a["beta1"]), beta2: Number(a["beta2"]), eps: Number(a["eps"]), weightDecay: Number(a["weight_decay"]) };
  if (clip) Object.assign(hyper, { clip: true, writeClipped: true });
  dispatch(fusedOptimizerKernel(segments, kind, hyper, host.caps), bindings, `${kind} update`);
  return gradNorm ? { update, clipped, gradNorm } : { update, clipped };
}
