/**
 * Graph → Program: every op lowered to kernels at fixed sizes, every tensor given a home, and the
 * command lists of a training step (micro-batch forward and backward, gradient accumulation,
 * update) and of evaluation (forward and loss). Pure: the device comes later (src/runtime/gpu).
 *
 * Homes: frozen weights get a buffer each (f16 when asked, for weights only linear reads);
 * trainable parameters, gradients and optimizer state live in arenas (arenas.ts); per-batch inputs
 * in their own buffers; everything else in the activation pool (pool.ts), by liveness. A view
 * (a lowering's alias) binds its input's buffer at an offset and keeps that buffer alive; a view
 * at an offset a storage binding cannot take is copied out instead.
 */
import type { Graph, Op } from "../../../ir/index.js";
import { gradName, LR_INPUT, STEP_INPUT, UPDATE_OPS } from "../../../ir/step-names.js";
import { DeviceLimitError, type DeviceCaps } from "../caps.js";
import type { KernelSpec } from "../kernel.js";
import { lowering, type TensorArg } from "../lower/index.js";
import type { MatmulVariant } from "../matmul/index.js";
import { accumulateGrid, accumulateKernel } from "./accumulate.js";
import { layoutArenas, placeArenas } from "./arenas.js";
import { chooseF16Weights } from "./precision.js";
import { BufferPool } from "./pool.js";
import { concreteAttrs, evalDim, valueShapes, type DimEnv } from "./shapes.js";
import { planFusedUpdate, type FusedUpdate } from "./update.js";
import { splitLargeWeights } from "./split.js";
import { compactKernels, mergeDispatches } from "./merge.js";

/** Stands for an absent graph in splitLargeWeights' list. */
const EMPTY: Graph = { name: "", inputs: [], params: [], ops: [], outputs: [] };
import {
  alignUp,
  BINDING_ALIGN,
  type BufferDecl,
  type BufferRole,
  type Command,
  type DispatchCmd,
  type ParamLoc,
  type Program,
  type RngSlot,
  type Slice,
  type TensorLoc,
} from "./types.js";

export interface BuildOptions {
  /** Micro-batch rows and the padded sequence length the program is compiled for. */
  B: number;
  T: number;
  caps: DeviceCaps;
  matmul: MatmulVariant;
  /** Store frozen weights that only linear ops read as f16 (needs caps.f16). */
  f16Weights?: boolean;
  /** The optimizer as one dispatch over the arenas where the graph allows (update.ts); default true. */
  fusedUpdate?: boolean;
  /**
   * The device's own largest storage binding, when `caps` plans for a smaller one: an activation
   * past it cannot be bound at all, and is refused here by name rather than by Dawn mid-run.
   */
  deviceBindingBytes?: number;
  /** Run independent dispatches of a command list as one (merge.ts); default true. */
  mergeDispatches?: boolean;
}

const ELEM_BYTES = { f32: 4, f16: 2, i32: 4 } as const;

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function tensorBytes(dtype: "f32" | "f16" | "i32", shape: readonly number[]): number {
  return alignUp(numel(shape) * ELEM_BYTES[dtype], 4);
}

/** What one phase of commands is planned from. */
interface PhaseInput {
  graph: Graph;
  ops: Op[];
  /** Values that stay in their buffers to the end of the phase. */
  keep: Set<string>;
  /** A fixed home for some outputs (a micro-batch's gradients go to the grad-micro arena). */
  placeOutput?: (name: string) => Slice | undefined;
  rngBuffer: number;
}

class Builder {
  readonly buffers: BufferDecl[] = [];
  readonly kernels: KernelSpec[] = [];
  private readonly kernelIndex = new Map<string, number>();
  readonly pool: BufferPool = new BufferPool((bytes): BufferDecl => this.buffer(bytes, "activation", `pool#${this.pool.all.length}`));
  /** Homes of values that outlive a phase: parameters, inputs, optimizer state. */
  readonly persistent = new Map<string, TensorLoc>();
  savedBytes = 0;
  unpooled = 0;

  constructor(
    readonly o: BuildOptions,
    readonly env: DimEnv,
  ) {}

  buffer(bytes: number, role: BufferRole, label: string): BufferDecl {
    const b: BufferDecl = { id: this.buffers.length, label, bytes: Math.max(4, alignUp(bytes, 4)), role };
    this.buffers.push(b);
    return b;
  }

  kernel(spec: KernelSpec): number {
    const key = `${spec.entryPoint}\n${spec.wgsl}`;
    let i = this.kernelIndex.get(key);
    if (i === undefined) {
      i = this.kernels.length;
      this.kernels.push(spec);
      this.kernelIndex.set(key, i);
    }
    return i;
  }

  /** Lowers `ops` in order and plans their memory; returns the phase's commands and value homes. */
  phase(p: PhaseInput): { commands: Command[]; locs: Map<string, TensorLoc> } {
    const shapes = valueShapes(p.graph, this.env);
    const locs = new Map<string, TensorLoc>(this.persistent);
    const lastUse = new Map<string, number>();
    p.ops.forEach((op, i) => op.inputs.forEach((v) => lastUse.set(v, i)));
    const saved = new Set(p.graph.saved ?? []);
    /** Pooled buffer behind each value (itself or what it is a view of). */
    const home = new Map<string, BufferDecl>();
    const rootLast = new Map<BufferDecl, number>();
    const kept = new Set<BufferDecl>();
    const commands: Command[] = [];
    let rngSlot = 0;
    this.pool.reset();

    const hold = (b: BufferDecl, until: number, keep: boolean) => {
      rootLast.set(b, Math.max(rootLast.get(b) ?? -1, until));
      if (keep) kept.add(b);
    };

    p.ops.forEach((op, i) => {
      const lower = lowering(op.op);
      const what = `${op.op} (${op.outputs[0]?.name ?? "?"})`;
      if (!lower) throw new Error(`program: no WGSL lowering for op '${op.op}', needed by ${op.outputs[0]?.name ?? "an op"}`);
      const ins = op.inputs.map((v) => {
        const l = locs.get(v);
        if (!l) throw new Error(`program: ${what} reads '${v}', which has no value in this phase`);
        return l;
      });
      const outArgs: TensorArg[] = op.outputs.map((o) => ({ dtype: o.dtype, shape: shapes.get(o.name)! }));
      const rng = op.op === "dropout" ? rngSlot++ : undefined;
      const lowered = lower({
        op,
        inputs: ins.map((l) => ({ dtype: l.dtype, shape: l.shape })),
        outputs: outArgs,
        attrs: concreteAttrs(op, this.env),
        caps: this.o.caps,
        matmul: this.o.matmul,
        ...(rng !== undefined ? { rngSlot: rng } : {}),
      });
      if (rng !== undefined) this.rngStreams.push({ slot: rng, stream: String(op.attrs["stream"]) });

      const outs: TensorLoc[] = [];
      op.outputs.forEach((o, k) => {
        const shape = outArgs[k]!.shape;
        const bytes = tensorBytes(o.dtype, shape);
        // Bound whole by the kernels that read it: past the device's largest binding Dawn would refuse the bind group mid-run.
        const limit = this.o.deviceBindingBytes;
        if (limit !== undefined && bytes > limit) {
          throw new DeviceLimitError(`${what} makes ${o.name} [${shape.join(", ")}] of ${bytes} bytes, more than the device's largest storage binding (${limit} bytes); lower batch or max_length (the tokens of one micro-batch), or use a device with larger bindings`, o.name);
        }
        const keepIt = p.keep.has(o.name);
        const until = lastUse.get(o.name) ?? i;
        const alias = lowered.aliases?.find((a) => a.out === k);
        if (alias) {
          const src = ins[alias.input]!;
          const offset = src.offset + alias.offsetBytes;
          if (offset % BINDING_ALIGN === 0) {
            outs.push({ buffer: src.buffer, offset, bytes, dtype: o.dtype, shape });
            const root = home.get(op.inputs[alias.input]!);
            if (root) {
              home.set(o.name, root);
              hold(root, until, keepIt);
            }
            return;
          }
          // A view a binding cannot start at: copy it out (copies need only 4-byte offsets).
          const b = this.pool.take(bytes);
          home.set(o.name, b);
          hold(b, until, keepIt);
          const loc: TensorLoc = { buffer: b.id, offset: 0, bytes, dtype: o.dtype, shape };
          commands.push({ kind: "copy", src: { buffer: src.buffer, offset, bytes }, dst: loc, label: `${o.name} (unaligned view)` });
          outs.push(loc);
          return;
        }
        const fixed = p.placeOutput?.(o.name);
        if (fixed) {
          outs.push({ ...fixed, dtype: o.dtype, shape });
          return;
        }
        const b = this.pool.take(bytes);
        home.set(o.name, b);
        hold(b, until, keepIt);
        this.unpooled += bytes;
        if (saved.has(o.name)) this.savedBytes += bytes;
        outs.push({ buffer: b.id, offset: 0, bytes, dtype: o.dtype, shape });
      });
      op.outputs.forEach((o, k) => locs.set(o.name, outs[k]!));

      const scratch = (lowered.scratch ?? []).map((bytes) => this.pool.take(bytes));
      for (const spec of lowered.kernels) {
        const bindings: Record<string, Slice> = {};
        for (const b of spec.bindings) bindings[b.name] = this.bind(b.name, ins, outs, scratch, p.rngBuffer, what, spec.label);
        checkAccess(spec, bindings, this.buffers, what);
        const cmd: DispatchCmd = { kind: "dispatch", kernel: this.kernel(spec), label: op.outputs[0]?.name ?? op.op, op: op.op, bindings, workgroups: [...spec.dispatch] };
        commands.push(cmd);
      }
      for (const s of scratch) this.pool.release(s);
      // Give back every buffer whose last reader this op was (inputs), or that nothing reads.
      const roots = new Set<BufferDecl>();
      for (const v of [...op.inputs, ...op.outputs.map((o) => o.name)]) {
        const r = home.get(v);
        if (r) roots.add(r);
      }
      for (const r of roots) {
        if (kept.has(r) || (rootLast.get(r) ?? -1) > i || this.released.has(r)) continue;
        this.pool.release(r);
        this.released.add(r);
      }
      this.pool.endOp();
    });
    this.released.clear();
    return { commands, locs };
  }

  private readonly released = new Set<BufferDecl>();
  rngStreams: RngSlot[] = [];

  private bind(name: string, ins: TensorLoc[], outs: TensorLoc[], scratch: BufferDecl[], rngBuffer: number, what: string, label: string): Slice {
    const m = /^(in|out|tmp)(\d+)$/.exec(name);
    if (name === "rng") return { buffer: rngBuffer, offset: 0, bytes: this.buffers[rngBuffer]!.bytes };
    if (!m) throw new Error(`program: ${what}: kernel ${label} has binding '${name}', which is not in<i>, out<i>, tmp<i> or rng`);
    const i = Number(m[2]);
    if (m[1] === "tmp") {
      const s = scratch[i];
      if (!s) throw new Error(`program: ${what}: kernel ${label} binds tmp${i} but the lowering asked for ${scratch.length} scratch buffers`);
      return { buffer: s.id, offset: 0, bytes: s.bytes };
    }
    const l = (m[1] === "in" ? ins : outs)[i];
    if (!l) throw new Error(`program: ${what}: kernel ${label} binds ${name}, which the op does not have`);
    return { buffer: l.buffer, offset: l.offset, bytes: l.bytes };
  }
}

/** WebGPU forbids one buffer bound read-only and writable in one dispatch; catch it here, by name. */
function checkAccess(spec: KernelSpec, bindings: Record<string, Slice>, buffers: BufferDecl[], what: string): void {
  const access = new Map<number, Set<string>>();
  for (const b of spec.bindings) {
    const s = bindings[b.name]!;
    if (s.offset % BINDING_ALIGN !== 0) throw new Error(`program: ${what}: ${b.name} bound at offset ${s.offset}, not a multiple of ${BINDING_ALIGN}`);
    const set = access.get(s.buffer) ?? new Set<string>();
    set.add(b.access === "read_write" ? "write" : "read");
    access.set(s.buffer, set);
  }
  for (const [buf, set] of access)
    if (set.size > 1) throw new Error(`program: ${what}: kernel ${spec.label} would bind buffer ${buffers[buf]!.label} both read-only and writable`);
}

const isPerBatchInput = (name: string): boolean => !name.startsWith("optim.") || name === LR_INPUT || name === STEP_INPUT;

/** A graph run forward only, keeping the named outputs in place after the run. */
export interface ForwardRequest {
  graph: Graph;
  outputs: string[];
}

/**
 * The Program for a training graph (compileSpec output) and/or an evaluation graph at [B, T], and/or
 * a forward-only graph with named outputs.
 */
export function buildProgram(train: Graph | undefined, evalGraph: Graph | undefined, o: BuildOptions, forward?: ForwardRequest): Program {
  if (!train && !evalGraph && !forward) throw new Error("program: nothing to build");
  if (o.f16Weights && !o.caps.f16) throw new Error("program: f16 weights need shader-f16");
  const env: DimEnv = { B: o.B, T: o.T };
  const bld = new Builder(o, env);
  const maxBinding = o.caps.maxStorageBindingBytes;
  const f16 = o.f16Weights ? chooseF16Weights([train, evalGraph, forward?.graph].filter((g): g is Graph => g !== undefined)) : new Set<string>();
  // Frozen weights over one storage binding are read in row blocks (split.ts).
  const split = splitLargeWeights(
    [train, evalGraph, forward?.graph].map((g) => g ?? EMPTY),
    (name) => (f16.has(name) ? 2 : 4),
    maxBinding,
  );
  const [tg, eg, fg] = split.graphs.map((g) => (g === EMPTY ? undefined : g));
  train = tg;
  evalGraph = eg;
  if (forward && fg) forward = { ...forward, graph: fg };
  const partOf = new Map(split.parts.map((q) => [q.name, q]));
  for (const q of split.parts) if (f16.has(q.of)) f16.add(q.name);
  const graphs = [train, evalGraph, forward?.graph].filter((g): g is Graph => g !== undefined);

  // Parameters: the union of both graphs', by name.
  const params = new Map<string, Graph["params"][number]>();
  for (const g of graphs) for (const p of g.params) if (!params.has(p.name)) params.set(p.name, p);
  const paramLocs: ParamLoc[] = [];
  const trainables = [...params.values()].filter((p) => p.trainable);
  const tLayout = layoutArenas(trainables.map((p) => ({ name: p.name, bytes: tensorBytes("f32", p.shape) })), maxBinding);
  const tPlaced = placeArenas(tLayout, "trainable", "trainable", (b, r, l) => bld.buffer(b, r, l));
  for (const p of params.values()) {
    let loc: TensorLoc;
    if (p.trainable) loc = { ...tPlaced.slices.get(p.name)!, dtype: "f32", shape: p.shape };
    else {
      const dtype = f16.has(p.name) ? "f16" : p.dtype === "i32" ? "i32" : "f32";
      const bytes = tensorBytes(dtype, p.shape);
      if (bytes > maxBinding) throw new Error(`program: weight ${p.name} takes ${bytes} bytes after splitting, more than the device's largest storage binding (${maxBinding} bytes)`);
      loc = { buffer: bld.buffer(bytes, "weight", p.name).id, offset: 0, bytes, dtype, shape: p.shape };
    }
    bld.persistent.set(p.name, loc);
    const part = partOf.get(p.name);
    paramLocs.push({ ...loc, name: p.name, trainable: p.trainable, ...(part ? { rowsOf: { name: part.of, start: part.start, rows: part.rows } } : {}) });
  }

  // Per-batch inputs, shared by name between the two graphs.
  const inputs: Program["inputs"] = {};
  const state: Program["state"] = {};
  for (const g of graphs)
    for (const v of g.inputs) {
      if (!isPerBatchInput(v.name) || inputs[v.name]) continue;
      const real = v.shape.map((d) => evalDim(d, env));
      const bytes = tensorBytes(v.dtype, real);
      const loc: TensorLoc = { buffer: bld.buffer(bytes, "input", v.name).id, offset: 0, bytes, dtype: v.dtype, shape: real };
      inputs[v.name] = loc;
      bld.persistent.set(v.name, loc);
    }

  const prog: Program = {
    B: o.B,
    T: o.T,
    kernels: bld.kernels,
    buffers: bld.buffers,
    params: paramLocs,
    inputs,
    state,
    memory: { peakBytes: 0, byRole: emptyRoles(), buffers: 0, activationBuffers: 0, savedBytes: 0, unpooledActivationBytes: 0 },
  };

  if (train) {
    // Optimizer state: one arena set per slot kind, in the trainable arena's order.
    // In the trainable arena's order, so a tensor has one element offset in every arena.
    const order = new Map(trainables.map((p, i) => [p.name, i]));
    const rank = (name: string): number => order.get(name.split(".").slice(2).join(".")) ?? order.size;
    const slotInputs = train.inputs.filter((v) => !isPerBatchInput(v.name)).sort((x, y) => rank(x.name) - rank(y.name));
    const bySlot = new Map<string, { name: string; bytes: number; shape: number[] }[]>();
    for (const v of slotInputs) {
      const slot = v.name.split(".")[1]!;
      const shape = v.shape.map((d) => Number(d));
      const l = bySlot.get(slot) ?? [];
      l.push({ name: v.name, bytes: tensorBytes("f32", shape), shape });
      bySlot.set(slot, l);
    }
    for (const [slot, items] of bySlot) {
      const placed = placeArenas(layoutArenas(items, maxBinding), "state", `optim.${slot}`, (b, r, l) => bld.buffer(b, r, l));
      for (const it of items) {
        const loc: TensorLoc = { ...placed.slices.get(it.name)!, dtype: "f32", shape: it.shape };
        state[it.name] = loc;
        bld.persistent.set(it.name, loc);
      }
    }
    prog.step = planStep(bld, train, maxBinding);
  }
  if (evalGraph) {
    bld.rngStreams = [];
    const rngCount = evalGraph.ops.filter((op) => op.op === "dropout").length;
    const rngBuf = bld.buffer(4 * Math.max(1, rngCount), "rng", "rng.eval");
    const { commands, locs } = bld.phase({ graph: evalGraph, ops: evalGraph.ops, keep: new Set(["loss"]), rngBuffer: rngBuf.id });
    const loss = locs.get("loss");
    if (!loss) throw new Error("program: the evaluation graph has no 'loss'");
    prog.eval = { commands, loss: sliceOf(loss), rng: { buffer: rngBuf.id, slots: bld.rngStreams } };
  }
  if (forward) {
    bld.rngStreams = [];
    const rngCount = forward.graph.ops.filter((op) => op.op === "dropout").length;
    const rngBuf = bld.buffer(4 * Math.max(1, rngCount), "rng", "rng.forward");
    const { commands, locs } = bld.phase({ graph: forward.graph, ops: forward.graph.ops, keep: new Set(forward.outputs), rngBuffer: rngBuf.id });
    const outputs: Record<string, TensorLoc> = {};
    for (const name of forward.outputs) {
      const l = locs.get(name);
      if (!l) throw new Error(`program: the forward graph has no '${name}'`);
      outputs[name] = l;
    }
    prog.forward = { commands, outputs, rng: { buffer: rngBuf.id, slots: bld.rngStreams } };
  }

  mergeProgram(prog, bld, o);

  const byRole = emptyRoles();
  for (const b of bld.buffers) byRole[b.role] += b.bytes;
  prog.memory = {
    peakBytes: bld.buffers.reduce((a, b) => a + b.bytes, 0),
    byRole,
    buffers: bld.buffers.length,
    activationBuffers: bld.pool.all.length,
    savedBytes: bld.savedBytes,
    unpooledActivationBytes: bld.unpooled,
  };
  return prog;
}

/** Independent dispatches of every command list merged (merge.ts), then the kernels no list uses dropped. */
function mergeProgram(prog: Program, bld: Builder, o: BuildOptions): void {
  const merge = (l: Command[]) => (o.mergeDispatches === false ? l : mergeDispatches(l, bld.kernels, o.caps, (spec) => bld.kernel(spec)));
  const s = prog.step;
  const lists = [s?.prologue, s?.micro, s?.accumulateFirst, s?.accumulate, s?.update, prog.eval?.commands, prog.forward?.commands].map((l) => (l ? merge(l) : []));
  const c = compactKernels(bld.kernels, lists);
  prog.kernels = c.kernels;
  const [prologue, micro, accumulateFirst, accumulate, update, evalCmds, forwardCmds] = c.lists as [Command[], Command[], Command[], Command[], Command[], Command[], Command[]];
  if (s) Object.assign(s, { prologue, micro, accumulateFirst, accumulate, update });
  if (prog.eval) prog.eval.commands = evalCmds;
  if (prog.forward) prog.forward.commands = forwardCmds;
}

function planStep(bld: Builder, g: Graph, maxBinding: number): NonNullable<Program["step"]> {
  const trainable = new Map(g.params.filter((p) => p.trainable).map((p) => [p.name, p]));
  const order = new Map([...trainable.keys()].map((p, i) => [p, i]));
  // In the trainable arena's order (see buildProgram's state arenas).
  const gradParams = g.outputs
    .filter((v) => v.startsWith("grad.") && trainable.has(v.slice(5)))
    .map((v) => v.slice(5))
    .sort((a, b) => order.get(a)! - order.get(b)!);
  const items = gradParams.map((p) => ({ name: p, bytes: tensorBytes("f32", trainable.get(p)!.shape) }));
  const layout = layoutArenas(items, maxBinding);
  const acc = placeArenas(layout, "grad", "grad", (b, r, l) => bld.buffer(b, r, l));
  const micro = placeArenas(layout, "grad-micro", "grad.micro", (b, r, l) => bld.buffer(b, r, l));
  const microOps = g.ops.filter((op) => !UPDATE_OPS.has(op.op));
  const updateOps = g.ops.filter((op) => UPDATE_OPS.has(op.op));

  bld.rngStreams = [];
  const rngCount = microOps.filter((op) => op.op === "dropout").length;
  const rngBuf = bld.buffer(4 * Math.max(1, rngCount), "rng", "rng.step");
  const gradOf = new Map(gradParams.map((p) => [gradName(p), p]));
  const keep = new Set(["loss", ...gradOf.keys()]);
  const hoisted = planPrologue(bld, g, microOps, keep, rngBuf.id);
  const m = bld.phase({
    graph: g,
    ops: hoisted.rest,
    keep,
    placeOutput: (name) => {
      const p = gradOf.get(name);
      return p ? micro.slices.get(p) : undefined;
    },
    rngBuffer: rngBuf.id,
  });
  for (const v of hoisted.exported) bld.persistent.delete(v);
  const rng = { buffer: rngBuf.id, slots: bld.rngStreams };
  const loss = m.locs.get("loss");
  if (!loss) throw new Error("program: the training graph has no 'loss'");

  // Gradients that are views of something else were not written to the micro arena: moved one by one.
  const accumulateFirst: Command[] = [];
  const accumulate: Command[] = [];
  const k = bld.kernel(accumulateKernel());
  const viewGrads = gradParams.filter((p) => {
    const l = m.locs.get(gradName(p))!;
    const s = micro.slices.get(p)!;
    return l.buffer !== s.buffer || l.offset !== s.offset;
  });
  const inMicro = new Set(gradParams.filter((p) => !viewGrads.includes(p)));
  layout.arenas.forEach((a, i) => {
    if (!a.items.some((n) => inMicro.has(n))) return;
    const src: Slice = { buffer: micro.buffers[i]!.id, offset: 0, bytes: alignUp(a.bytes, 4) };
    const dst: Slice = { buffer: acc.buffers[i]!.id, offset: 0, bytes: alignUp(a.bytes, 4) };
    accumulateFirst.push({ kind: "copy", src, dst, label: `grad arena ${i}` });
    accumulate.push({ kind: "dispatch", kernel: k, label: `grad arena ${i}`, op: "accumulate", bindings: { src, dst }, workgroups: accumulateGrid(src.bytes / 4, bld.o.caps) });
  });
  for (const p of viewGrads) {
    const src = sliceOf(m.locs.get(gradName(p))!);
    const dst = acc.slices.get(p)!;
    accumulateFirst.push({ kind: "copy", src, dst, label: gradName(p) });
    accumulate.push({ kind: "dispatch", kernel: k, label: gradName(p), op: "accumulate", bindings: { src, dst }, workgroups: accumulateGrid(src.bytes / 4, bld.o.caps) });
  }

  // The update reads the summed gradients; its outputs are copied over the parameters and state.
  const grads: Record<string, Slice> = {};
  for (const p of gradParams) {
    const s = acc.slices.get(p)!;
    grads[p] = s;
    bld.persistent.set(gradName(p), { ...s, dtype: "f32", shape: trainable.get(p)!.shape });
  }
  const fused = bld.o.fusedUpdate === false ? undefined : planFusedUpdate(updateHost(bld), updateOps, grads);
  const { update, clipped, gradNorm } = fused ?? perOpUpdate(bld, g, updateOps, rngBuf.id);
  for (const p of gradParams) bld.persistent.delete(gradName(p));
  const step: NonNullable<Program["step"]> = { prologue: hoisted.commands, micro: m.commands, accumulateFirst, accumulate, update, loss: sliceOf(loss), grads, clipped, rng };
  if (gradNorm) step.gradNorm = gradNorm;
  return step;
}

/** Exported values a step's prologue may hold for the whole step before it is not worth it. */
const PROLOGUE_MAX_BYTES = 64 << 20;

/**
 * The micro-batch ops that read no per-batch input, directly or through other ops: AdaLoRA's
 * orthogonal regulariser and its gradient, rank-scaled factors, prefix and prompt encoders,
 * constants. They give the same values in every micro-batch of a step, since parameters change
 * only in the update, so they run once, before the first micro-batch, and the values the
 * micro-batch ops read from them stay in buffers of their own for the step. Dropout stays per
 * micro-batch (its stream), and so does whatever writes the loss or a gradient. With nothing to
 * hoist, or more than PROLOGUE_MAX_BYTES to hold, every op stays in the micro-batch.
 */
function planPrologue(bld: Builder, g: Graph, ops: readonly Op[], keep: ReadonlySet<string>, rngBuffer: number): { commands: Command[]; rest: Op[]; exported: string[] } {
  // Every graph input but the optimizer's (its state, learning rate and step are the step's own).
  const varies = new Set(g.inputs.filter((v) => !v.name.startsWith("optim.")).map((v) => v.name));
  const once: Op[] = [];
  const rest: Op[] = [];
  for (const op of ops) {
    if (op.op === "dropout" || op.outputs.some((o) => keep.has(o.name)) || op.inputs.some((v) => varies.has(v))) {
      rest.push(op);
      for (const o of op.outputs) varies.add(o.name);
    } else once.push(op);
  }
  if (once.length === 0) return { commands: [], rest, exported: [] };
  const made = new Set(once.flatMap((op) => op.outputs.map((o) => o.name)));
  const exported = [...new Set(rest.flatMap((op) => op.inputs.filter((v) => made.has(v))))];
  const shapes = valueShapes(g, bld.env);
  const dtypes = new Map(once.flatMap((op) => op.outputs.map((o) => [o.name, o.dtype] as const)));
  const bytes = exported.map((v) => tensorBytes(dtypes.get(v)!, shapes.get(v)!));
  if (bytes.reduce((a, b) => a + b, 0) > PROLOGUE_MAX_BYTES) return { commands: [], rest: [...ops], exported: [] };
  const homes = new Map(exported.map((v, i) => [v, { buffer: bld.buffer(bytes[i]!, "activation", `step ${v}`).id, offset: 0, bytes: bytes[i]! }]));
  const p = bld.phase({ graph: g, ops: once, keep: new Set(exported), placeOutput: (name) => homes.get(name), rngBuffer });
  const pooled = new Set(bld.pool.all.map((b) => b.id));
  for (const v of exported) {
    let loc = p.locs.get(v)!;
    // A view of a pooled value (a reshape of a temporary) would be overwritten by the micro-batch ops: copied home.
    if (pooled.has(loc.buffer)) {
      const home = homes.get(v)!;
      p.commands.push({ kind: "copy", src: sliceOf(loc), dst: home, label: `${v} (held for the step)` });
      loc = { ...loc, ...home };
    }
    bld.persistent.set(v, loc);
  }
  return { commands: p.commands, rest, exported };
}

function updateHost(bld: Builder): Parameters<typeof planFusedUpdate>[0] {
  return { caps: bld.o.caps, buffers: bld.buffers, persistent: bld.persistent, buffer: (b, r, l) => bld.buffer(b, r, l), kernel: (s) => bld.kernel(s) };
}

/** The update ops lowered one by one, each output copied over its parameter or state. */
function perOpUpdate(bld: Builder, g: Graph, updateOps: Op[], rngBuffer: number): FusedUpdate {
  const updateOuts = updateOps.flatMap((op) => op.outputs.map((o) => o.name));
  const u = bld.phase({ graph: g, ops: updateOps, keep: new Set(updateOuts), rngBuffer });
  const update = [...u.commands];
  const clipped: Record<string, Slice> = {};
  let gradNorm: Slice | undefined;
  for (const op of updateOps) {
    if (op.op === "clip_grad_norm") {
      op.inputs.forEach((v, i) => {
        if (v.startsWith("grad.")) clipped[v.slice(5)] = sliceOf(u.locs.get(op.outputs[i]!.name)!);
      });
      gradNorm = sliceOf(u.locs.get(op.outputs[op.outputs.length - 1]!.name)!);
      continue;
    }
    // As the reference executor: outputs are the parameter, then each state input, in order.
    const [param, , ...rest] = op.inputs;
    const homes = [param!, ...rest.filter((v) => !isPerBatchInput(v))];
    homes.forEach((name, i) => {
      const dst = bld.persistent.get(name);
      if (!dst) throw new Error(`program: update ${op.op} writes '${name}', which has no home`);
      update.push({ kind: "copy", src: sliceOf(u.locs.get(op.outputs[i]!.name)!), dst: sliceOf(dst), label: `next ${name}` });
    });
  }
  return gradNorm ? { update, clipped, gradNorm } : { update, clipped };
}

function sliceOf(l: Slice): Slice {
  return { buffer: l.buffer, offset: l.offset, bytes: l.bytes };
}

function emptyRoles(): Record<BufferRole, number> {
  return { weight: 0, trainable: 0, grad: 0, "grad-micro": 0, state: 0, input: 0, activation: 0, rng: 0 };
}
