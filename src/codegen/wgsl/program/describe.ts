/**
 * Text forms of a Program for `pefc compile --emit wgsl|plan`: every kernel's WGSL under a header
 * naming the ops that use it, and the memory plan with the command lists.
 */
import type { Command, Program, Slice } from "./types.js";

export function programWgsl(p: Program): string {
  const users = new Map<number, Set<string>>();
  for (const c of allCommands(p))
    if (c.kind === "dispatch") {
      const s = users.get(c.kernel) ?? new Set<string>();
      s.add(c.op);
      users.set(c.kernel, s);
    }
  return p.kernels
    .map((k, i) => `// ---- kernel ${i}: ${k.label} (op ${[...(users.get(i) ?? [])].join(", ") || "unused"}); workgroup ${k.workgroupSize.join("x")}\n${k.wgsl}`)
    .join("\n");
}

function allCommands(p: Program): Command[] {
  const s = p.step;
  return [...(s ? [...s.prologue, ...s.micro, ...s.accumulateFirst, ...s.accumulate, ...s.update] : []), ...(p.eval?.commands ?? [])];
}

export function programPlan(p: Program): string {
  const out: string[] = [];
  const m = p.memory;
  out.push(`program B=${p.B} T=${p.T}: ${p.kernels.length} kernels, ${m.buffers} buffers (${m.activationBuffers} pooled), peak ${mib(m.peakBytes)}`);
  out.push(`memory by role: ${Object.entries(m.byRole).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${mib(v)}`).join(", ")}`);
  out.push(`activations: ${mib(m.byRole.activation)} pooled for ${mib(m.unpooledActivationBytes)} without reuse; saved for backward ${mib(m.savedBytes)}`);
  out.push("", "buffers:");
  for (const b of p.buffers) out.push(`  #${b.id} ${b.role} ${b.bytes} B  ${b.label}`);
  const sl = (s: Slice) => `#${s.buffer}+${s.offset}:${s.bytes}`;
  const list = (title: string, cs: readonly Command[]) => {
    const n = cs.filter((c) => c.kind === "dispatch").length;
    out.push("", `${title}: ${n} dispatches, ${cs.length - n} copies`);
    for (const c of cs) {
      if (c.kind === "copy") out.push(`  copy ${sl(c.src)} -> ${sl(c.dst)}  ${c.label}`);
      else {
        const b = Object.entries(c.bindings).map(([k, s]) => `${k}=${sl(s)}`).join(" ");
        out.push(`  ${c.op} k${c.kernel} [${c.workgroups.join(",")}] ${b}  ${c.label}`);
      }
    }
  };
  if (p.step) {
    if (p.step.prologue.length) list("step: once, before the micro-batches", p.step.prologue);
    list("step: per micro-batch", p.step.micro);
    list("step: after the first micro-batch", p.step.accumulateFirst);
    list("step: after each later micro-batch", p.step.accumulate);
    list("step: update", p.step.update);
  }
  if (p.eval) list("eval", p.eval.commands);
  return out.join("\n");
}

/** Dispatches one optimizer step records for `micro` micro-batches. */
export function dispatchesPerStep(p: Program, micro: number): number {
  const s = p.step;
  if (!s) return 0;
  const d = (cs: readonly Command[]) => cs.filter((c) => c.kind === "dispatch").length;
  return d(s.prologue) + micro * d(s.micro) + d(s.accumulateFirst) + (micro - 1) * d(s.accumulate) + d(s.update);
}

function mib(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}
