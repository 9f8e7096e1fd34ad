// `npm run bench -- --train --profile`: where a warm training step spends its device time. Each
// case's step runs with every dispatch timed on its own (timestamp queries, one pass per
// dispatch), a few times; the table gives, per kernel, its op, dispatches per step, the median
// over the profiled steps of its summed time, and its share of the step. The plain step's wall
// time is printed beside the sum, so the cost of the separate passes shows. `--quick` profiles only
// the stories260K step.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { median, type Device } from "../src/runtime/device/index.js";
import { openGpuBackend } from "../src/runtime/gpu/index.js";
import { epochGroups } from "../src/runtime/train/loop.js";
import { session, syntheticModel, TRAIN_CASES } from "./train.js";

const PROFILED_STEPS = 5;

interface Row {
  kernel: string;
  ops: Set<string>;
  count: number;
  ms: number[];
}

export async function benchProfile(dev: Device, log: (s: string) => void, o: { quick: boolean }): Promise<void> {
  if (!dev.hasTimestamps) {
    log("\nprofile: this adapter has no timestamp-query; nothing to time per dispatch");
    return;
  }
  for (const c of o.quick ? TRAIN_CASES.slice(0, 1) : TRAIN_CASES) {
    const dir = mkdtempSync(join(tmpdir(), "pefc-bench-"));
    try {
      await syntheticModel(dir, c.config);
      const s = await session(c, dir);
      const groups = epochGroups(s.train, s, 0, 0);
      const b = await openGpuBackend(s, dev);
      await b.step(groups[0]!, 1e-3);
      const rows = new Map<string, Row>();
      const stepMs: number[] = [];
      const sumMs: number[] = [];
      for (let i = 1; i <= PROFILED_STEPS; i++) {
        const g = groups[i % groups.length]!;
        const t0 = performance.now();
        await b.step(g, 1e-3);
        stepMs.push(performance.now() - t0);
        const p = await b.profileStep(g, 1e-3);
        const perKernel = new Map<string, number>();
        for (const d of p.dispatches) {
          let r = rows.get(d.kernel);
          if (!r) rows.set(d.kernel, (r = { kernel: d.kernel, ops: new Set(), count: 0, ms: [] }));
          r.ops.add(d.op);
          if (i === 1) r.count++;
          perKernel.set(d.kernel, (perKernel.get(d.kernel) ?? 0) + d.ns / 1e6);
        }
        for (const [k, ms] of perKernel) rows.get(k)!.ms.push(ms);
        sumMs.push([...perKernel.values()].reduce((a, x) => a + x, 0));
      }
      b.dispose();
      const table = [...rows.values()].map((r) => ({ ...r, med: median(r.ms) })).sort((x, y) => y.med - x.med);
      const total = table.reduce((a, r) => a + r.med, 0);
      const dispatches = table.reduce((a, r) => a + r.count, 0);
      log(`\nprofile: ${c.name}, ${PROFILED_STEPS} profiled steps on ${b.device}`);
      log(`  plain step ${median(stepMs).toFixed(1)} ms (wall, median); profiled dispatches sum to ${median(sumMs).toFixed(1)} ms over ${dispatches} dispatches`);
      log(`  ${"kernel".padEnd(44)} ${"op".padEnd(22)} ${"n".padStart(4)} ${"ms".padStart(9)} ${"share".padStart(6)}`);
      for (const r of table) {
        const ops = [...r.ops].join(",");
        log(`  ${r.kernel.slice(0, 44).padEnd(44)} ${ops.slice(0, 22).padEnd(22)} ${String(r.count).padStart(4)} ${r.med.toFixed(2).padStart(9)} ${((100 * r.med) / total).toFixed(1).padStart(5)}%`);
      }
      const byOp = new Map<string, { count: number; ms: number }>();
      for (const r of table) {
        const k = [...r.ops].join(",");
        const o = byOp.get(k) ?? { count: 0, ms: 0 };
        o.count += r.count;
        o.ms += r.med;
        byOp.set(k, o);
      }
      log(`  by op:`);
      for (const [op, o] of [...byOp].sort((x, y) => y[1].ms - x[1].ms)) log(`    ${op.slice(0, 40).padEnd(40)} ${String(o.count).padStart(4)} ${o.ms.toFixed(2).padStart(9)} ${((100 * o.ms) / total).toFixed(1).padStart(5)}%`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
