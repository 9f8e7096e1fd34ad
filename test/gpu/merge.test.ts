// Dispatch merging (src/codegen/wgsl/program/merge.ts). Without a device: on real training
// programs every command touching memory another command writes keeps its order against it, and a
// merged dispatch holds only mergeable kernels within the binding limit. On the device: a step
// with merged dispatches gives the same loss, gradients and parameters, bit for bit, as the same
// program dispatched one kernel at a time, in fewer dispatches.

import { beforeAll, describe, expect, it } from "vitest";
import { BASELINE_CAPS, type DeviceCaps } from "../../src/codegen/wgsl/caps.js";
import { buildProgram, type Command, type Program } from "../../src/codegen/wgsl/program/index.js";
import { accesses, mergeable, overlap, planMerges } from "../../src/codegen/wgsl/program/merge.js";
import type { Device } from "../../src/runtime/device/index.js";
import { GpuBackend } from "../../src/runtime/gpu/index.js";
import { compileBoth, microBatch, specText, startWeights, testDevice, type Compiled } from "./helpers.js";

const CASES = [
  ["tiny-llama", "freeze base; lora r=4 alpha=8 dropout=0.1;"],
  ["tiny-gpt2", "freeze base; lora r=4 alpha=8; ia3 on c_fc;"],
  ["tiny-chatglm2", "freeze base; adapter houlsby bottleneck=8;"],
] as const;

const dispatches = (l: readonly Command[]) => l.filter((c) => c.kind === "dispatch").length;

describe("merge plan", () => {
  // A CPU adapter's caps (fixed subgroups of 8: rows shared across lanes) and a GPU's.
  const cpu: DeviceCaps = { ...BASELINE_CAPS, isCpu: true, subgroups: true, subgroupSize: 8, maxStorageBuffersPerStage: 16 };
  for (const [model, body] of CASES)
    for (const [dev, caps] of [["cpu", cpu], ["gpu", BASELINE_CAPS]] as const)
      it(`${model} (${dev} caps): every conflicting pair keeps its order, merges stay within the limits`, () => {
        const c = compileBoth(specText(model, body, "grad_accum = 2;"));
        const p = buildProgram(c.train, c.evalGraph, { B: 2, T: 8, caps, matmul: "register", mergeDispatches: false });
        const cmds = p.step!.micro;
        const groups = planMerges(cmds, p.kernels, caps);
        expect(groups.flat().sort((a, b) => a - b)).toEqual(cmds.map((_, i) => i));
        const at = new Map(groups.flatMap((g, gi) => g.map((i) => [i, gi] as const)));
        const acc = cmds.map((cmd) => accesses(cmd, p.kernels));
        for (let i = 0; i < cmds.length; i++)
          for (let j = i + 1; j < cmds.length; j++) {
            const clash = acc[i]!.some((x) => acc[j]!.some((y) => (x.write || y.write) && overlap(x.slice, y.slice)));
            if (clash) expect(at.get(i)!, `${i} before ${j}`).toBeLessThan(at.get(j)!);
          }
        for (const g of groups.filter((g) => g.length > 1)) {
          const ks = g.map((i) => {
            const cmd = cmds[i]!;
            if (cmd.kind !== "dispatch") throw new Error("a copy was merged");
            return p.kernels[cmd.kernel]!;
          });
          expect(ks.every(mergeable)).toBe(true);
          expect(ks.reduce((a, k) => a + k.bindings.length, 0)).toBeLessThanOrEqual(caps.maxStorageBuffersPerStage ?? 8);
        }
        expect(groups.length).toBeLessThan(cmds.length);
      });
});

let dev: Device;
beforeAll(async () => {
  dev = await testDevice();
});

async function step(c: Compiled, merge: boolean) {
  const params = startWeights(c.train, c.profile);
  const b = await GpuBackend.create(dev, { trainGraph: c.train, evalGraph: c.evalGraph, params, seed: 5, B: 2, T: 8, matmul: "register", mergeDispatches: merge });
  const vocab = c.profile.dims.vocabSize;
  const r = await b.step([microBatch(2, 8, vocab, 1), microBatch(2, 6, vocab, 2, true)], 1e-2);
  const out = { loss: r.loss, grads: await b.grads(), values: await b.values(), program: b.program as Program };
  b.dispose();
  return out;
}

describe("merged step", () => {
  for (const [model, body] of CASES)
    it(`${model}: the same step bit for bit in fewer dispatches`, async () => {
      const c = compileBoth(specText(model, body, "grad_accum = 2;"));
      const one = await step(c, false);
      const merged = await step(c, true);
      expect(dispatches(merged.program.step!.micro)).toBeLessThan(dispatches(one.program.step!.micro));
      expect(merged.program.kernels.some((k) => k.label.includes(" + "))).toBe(true);
      // On a CPU adapter with fixed subgroups: subgroup kernels on the first lanes of a wider merge.
      if (dev.caps.subgroupSize > 0) expect(merged.program.kernels.some((k) => k.wgsl.includes("diagnostic(off, subgroup_uniformity)") && k.wgsl.includes("if (mw_lid.x <"))).toBe(true);
      expect(merged.loss).toBe(one.loss);
      for (const [k, g] of one.grads) expect(Array.from(merged.grads.get(k)!), k).toEqual(Array.from(g));
      for (const [k, v] of one.values) expect(Array.from(merged.values.get(k)!), k).toEqual(Array.from(v));
    }, 120_000);
});
