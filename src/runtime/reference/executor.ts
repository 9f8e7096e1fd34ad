// The CPU reference executor: runs any compiled graph (a forward pass, or a whole training step
// with backward and optimizer ops) op by op through the plain-loop reference functions, in f32 or
// f64. It is slow and exists to be right: the WGSL runtime is tested against it, and in f64 the
// gradient rules are tested against finite differences through it. Every op kind maps to exactly
// one kernel (exec/*.ts); an op without one is an error, never a silent skip.
//
// Dropout masks are a function of (seed, stream name, step): stream number = FNV-1a of
// `${stream}@${step}` (exec/tensor.ts streamId), so backward's dropout of dy, which carries the
// forward op's stream, regenerates the same mask.

import type { Graph, Op } from '../../ir/graph.js';
import { opDef } from '../../ir/ops.js';
import { clippedName, GRAD_NORM, gradName, LR_INPUT, STEP_INPUT, UPDATE_OPS } from '../../ir/step-names.js';
import type { Floats } from './floats.js';
import { addScaled } from './optim.js';
import { RankAllocator, type AdaloraMatrix, type AllocatorConfig } from './rank-allocator.js';
import { BACKWARD_KERNELS } from './exec/backward.js';
import { FORWARD_KERNELS, type Kernel, type KernelCtx } from './exec/forward.js';
import { OPTIMIZER_KERNELS } from './exec/optim.js';
import { FUSED_KERNELS } from './exec/fused.js';
import { DECODE_KERNELS } from './exec/decode.js';
import { evalDim, numelOf, type Bindings, type Data, type Tensor } from './exec/tensor.js';

export type { Tensor, Data, Bindings } from './exec/tensor.js';

/** Op kind → kernel; the union of the tables. */
export const KERNELS: Readonly<Record<string, Kernel>> = { ...FORWARD_KERNELS, ...BACKWARD_KERNELS, ...OPTIMIZER_KERNELS, ...FUSED_KERNELS, ...DECODE_KERNELS };

export type Precision = 'f32' | 'f64';

export interface RunOptions {
  /** Parameter data by name (any float array; converted to the run's precision). */
  params: ReadonlyMap<string, Floats>;
  /** Graph inputs: a bare array, or data with its shape (which binds the input's symbolic dims). */
  inputs?: Readonly<Record<string, Data | Tensor>>;
  /** Values for dimension symbols (B, T, ...); symbols left out are bound from shaped inputs. */
  dims?: Bindings;
  dtype?: Precision;
  seed?: number;
  /** The optimizer step (for dropout streams); default 0. */
  step?: number;
  /** Values known before the run (gradients summed over micro-batches, for the update ops). */
  values?: ReadonlyMap<string, Tensor>;
  /** Run only the ops this accepts (default: all). */
  ops?: (op: Op) => boolean;
}

const isTensor = (x: Data | Tensor): x is Tensor => !ArrayBuffer.isView(x);

function convert(d: Data, f64: boolean): Data {
  if (d instanceof Int32Array) return d;
  if (f64) return d instanceof Float64Array ? d : Float64Array.from(d);
  return d instanceof Float32Array ? d : Float32Array.from(d);
}

/** Binds symbols from shaped inputs whose declared dims are bare symbols. */
function bindDims(g: Graph, o: RunOptions): Record<string, number> {
  const env: Record<string, number> = { ...(o.dims ?? {}) };
  for (const v of g.inputs) {
    const given = o.inputs?.[v.name];
    if (!given || !isTensor(given)) continue;
    v.shape.forEach((d, i) => {
      if (typeof d === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(d) && env[d] === undefined) env[d] = given.shape[i]!;
    });
  }
  return env;
}

/** Attributes with symbolic dimensions evaluated to numbers. */
function concreteAttrs(op: Op, env: Bindings): Op['attrs'] {
  const def = opDef(op.op);
  const out: Op['attrs'] = { ...op.attrs };
  for (const [k, spec] of Object.entries(def?.attrs ?? {})) {
    const v = op.attrs[k];
    if (v === undefined) continue;
    if (spec.kind === 'dim') out[k] = evalDim(v as string | number, env);
    if (spec.kind === 'dims') out[k] = (v as (string | number)[]).map((d) => evalDim(d, env));
  }
  return out;
}

/** Runs the graph; returns every value computed or given, by name. */
export function runGraph(g: Graph, o: RunOptions): Map<string, Tensor> {
  const f64 = (o.dtype ?? 'f32') === 'f64';
  const env = bindDims(g, o);
  const vals = new Map<string, Tensor>();
  for (const p of g.params) {
    const d = o.params.get(p.name);
    if (!d) continue;
    if (d.length !== numelOf(p.shape)) throw new Error(`reference executor: param ${p.name} has ${d.length} elements, expected ${numelOf(p.shape)}`);
    vals.set(p.name, { data: convert(d, f64), shape: p.shape });
  }
  for (const v of g.inputs) {
    const given = o.inputs?.[v.name];
    if (!given) continue;
    const data = convert(isTensor(given) ? given.data : given, f64);
    const shape = v.shape.map((d) => evalDim(d, env));
    if (data.length !== numelOf(shape)) throw new Error(`reference executor: input ${v.name} has ${data.length} elements, expected ${numelOf(shape)} [${shape.join(',')}]`);
    vals.set(v.name, { data, shape });
  }
  for (const [k, t] of o.values ?? []) vals.set(k, { data: convert(t.data, f64), shape: t.shape });
  const ctx: KernelCtx = { f64, seed: o.seed ?? 0, step: o.step ?? 0 };
  for (const op of g.ops) {
    if (o.ops && !o.ops(op)) continue;
    const kernel = KERNELS[op.op];
    if (!kernel) throw new Error(`reference executor: no kernel for op '${op.op}'`);
    const ins = op.inputs.map((v) => {
      const t = vals.get(v);
      if (!t) throw new Error(`reference executor: ${op.op} (${op.outputs[0]?.name}) reads '${v}', which has no value`);
      return t;
    });
    const outShapes = op.outputs.map((x) => x.shape.map((d) => evalDim(d, env)));
    const outs = kernel(ins, concreteAttrs(op, env), outShapes, ctx);
    if (outs.length !== op.outputs.length) throw new Error(`reference executor: ${op.op} gave ${outs.length} outputs, expected ${op.outputs.length}`);
    op.outputs.forEach((x, i) => {
      const data = outs[i]!;
      if (data.length !== numelOf(outShapes[i]!)) throw new Error(`reference executor: ${op.op} output ${x.name} has ${data.length} elements, expected [${outShapes[i]!.join(',')}]`);
      vals.set(x.name, { data, shape: outShapes[i]! });
    });
  }
  return vals;
}

/** The scalar value of `name` after a run. */
export function scalar(vals: ReadonlyMap<string, Tensor>, name: string): number {
  const t = vals.get(name);
  if (!t) throw new Error(`reference executor: no value '${name}'`);
  return t.data[0]!;
}

/** What persists across optimizer steps: parameters, optimizer state, the step count, AdaLoRA's allocator. */
export interface TrainState {
  params: Map<string, Floats>;
  /** Optimizer state by graph input name (`optim.m.<p>`...). */
  optim: Map<string, Floats>;
  /** Optimizer steps taken so far. */
  step: number;
  allocator?: RankAllocator;
}

/** AdaLoRA's rank allocation after each update (PEFT's update_and_allocate), when the run has one. */
export interface AdaloraAllocation {
  config: AllocatorConfig;
  /** Per adapted module: its lora_A, lora_E, lora_B parameter names. */
  matrices: { name: string; A: string; E: string; B: string }[];
}

export interface StepOptions {
  lr: number;
  dtype?: Precision;
  dims?: Bindings;
  seed?: number;
  adalora?: AdaloraAllocation;
}

export interface StepResult {
  /** Mean of the micro-batch losses (the loss the step trained on, before the 1/grad_accum scaling). */
  loss: number;
  /** Total gradient norm before clipping, when the graph clips. */
  gradNorm?: number;
  /** Gradients summed over the micro-batches (each micro-batch's already scaled by 1/grad_accum). */
  grads: Map<string, Floats>;
}

/** Parameters copied to the run's precision, and zeroed state for every optimizer-state input. */
export function initTrainState(g: Graph, params: ReadonlyMap<string, Floats>, dtype: Precision = 'f32'): TrainState {
  const f64 = dtype === 'f64';
  const ps = new Map<string, Floats>();
  for (const p of g.params) {
    const d = params.get(p.name);
    if (d) ps.set(p.name, convert(d, f64) as Floats);
  }
  const optim = new Map<string, Floats>();
  for (const v of g.inputs) {
    if (!v.name.startsWith('optim.') || v.name === LR_INPUT || v.name === STEP_INPUT) continue;
    const n = numelOf(v.shape.map((d) => evalDim(d, {})));
    optim.set(v.name, f64 ? new Float64Array(n) : new Float32Array(n));
  }
  return { params: ps, optim, step: 0 };
}

/**
 * One optimizer step of a compiled training graph over grad_accum micro-batches, as Accelerate
 * runs it: forward and backward per micro-batch (the graph scales each loss by 1/grad_accum),
 * gradients summed, then the update ops once (clipping included), then AdaLoRA's allocation.
 * Updates `state` in place.
 */
export function trainStep(g: Graph, state: TrainState, micro: readonly Readonly<Record<string, Data | Tensor>>[], o: StepOptions): StepResult {
  if (micro.length === 0) throw new Error('reference executor: a step needs at least one micro-batch');
  const dtype = o.dtype ?? 'f32';
  const f64 = dtype === 'f64';
  state.step += 1;
  const gradOuts = g.outputs.filter((v) => v.startsWith('grad.'));
  const grads = new Map<string, Tensor>();
  let loss = 0;
  for (const inputs of micro) {
    const vals = runGraph(g, { params: state.params, inputs, dims: o.dims ?? {}, dtype, seed: o.seed ?? 0, step: state.step, ops: (op) => !UPDATE_OPS.has(op.op) });
    loss += scalar(vals, 'loss') / micro.length;
    for (const name of gradOuts) {
      const t = vals.get(name)!;
      const acc = grads.get(name);
      if (!acc) grads.set(name, { data: (t.data as Floats).slice(), shape: t.shape });
      else addScaled(acc.data as Floats, t.data as Floats, 1);
    }
  }
  const feed: Record<string, Data> = { [LR_INPUT]: Float64Array.of(o.lr), [STEP_INPUT]: Float64Array.of(state.step) };
  for (const [k, v] of state.optim) feed[k] = v;
  const updated = runGraph(g, { params: state.params, inputs: feed, dtype, values: grads, ops: (op) => UPDATE_OPS.has(op.op) });
  for (const op of g.ops) {
    if (!UPDATE_OPS.has(op.op) || op.op === 'clip_grad_norm') continue;
    const [p, , ...rest] = op.inputs;
    const stateIns = rest.filter((v) => state.optim.has(v));
    [p!, ...stateIns].forEach((name, i) => {
      const t = updated.get(op.outputs[i]!.name)!;
      if (name === p) state.params.set(name, t.data as Floats);
      else state.optim.set(name, t.data as Floats);
    });
  }
  const result: StepResult = { loss, grads: new Map([...grads].map(([k, t]) => [k.slice('grad.'.length), t.data as Floats])) };
  if (updated.has(GRAD_NORM)) result.gradNorm = scalar(updated, GRAD_NORM);
  if (o.adalora) allocate(state, o.adalora, updated, grads, f64);
  return result;
}

/**
 * PEFT's update_and_allocate on the post-step weights and this step's (clipped) gradients. PEFT's
 * loop passes the 0-based global_step (0 for the first optimizer step), while state.step already
 * counts this step (Adam's bias correction wants it 1-based): the allocator gets state.step − 1.
 */
function allocate(state: TrainState, a: AdaloraAllocation, vals: ReadonlyMap<string, Tensor>, grads: ReadonlyMap<string, Tensor>, f64: boolean): void {
  const gradOf = (p: string): Floats => {
    const t = vals.get(clippedName(p)) ?? grads.get(gradName(p));
    return t ? (t.data as Floats) : f64 ? new Float64Array(state.params.get(p)!.length) : new Float32Array(state.params.get(p)!.length);
  };
  const mats: AdaloraMatrix[] = a.matrices.map((m) => {
    const A = state.params.get(m.A)!;
    const B = state.params.get(m.B)!;
    const E = state.params.get(m.E)!;
    const r = E.length;
    return { name: m.name, r, inF: A.length / r, outF: B.length / r, A, E, B, gradA: gradOf(m.A), gradE: gradOf(m.E), gradB: gradOf(m.B) };
  });
  state.allocator ??= new RankAllocator(a.config, mats);
  state.allocator.updateAndAllocate(mats, state.step - 1);
}
