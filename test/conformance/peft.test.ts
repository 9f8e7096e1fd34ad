/**
 * pefc trains as Hugging Face PEFT trains: every case of ../shared/data/peft-conformance/ (a
 * genuine PEFT adapter in init/, the same adapter after PEFT 0.21 trained it 6 steps in
 * peft-trained/, the run as run.peft) runs from its init/ on the CPU reference and on the WebGPU
 * device, and the adapter pefc exports must match PEFT's: the same tensor keys and shapes, the
 * same AdaLoRA rank_pattern, every tensor within 2e-3 of PEFT's, and the loss of every optimizer
 * step within 1e-3 of the README's table. The comparison prints its maximum differences. Then the
 * export goes back through `init from`'s loader and must give the trained values bit for bit.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Device } from "../../src/runtime/device/index.js";
import { openGpuBackend } from "../../src/runtime/gpu/index.js";
import { loadAdapter, type LoadAdapterOptions } from "../../src/runtime/adapter/index.js";
import { adaloraAllocation } from "../../src/runtime/train/adalora.js";
import type { TrainBackend } from "../../src/runtime/train/backend.js";
import { runTraining, type Reporter } from "../../src/runtime/train/loop.js";
import { ReferenceBackend } from "../../src/runtime/train/reference-backend.js";
import { allParams, prepareSession } from "../../src/runtime/train/session.js";
import { testDevice } from "../kernels/helpers.js";
import { discoverCases, maxDiff, mirrorCase, readAdapter, type ConformanceCase } from "./cases.js";

const TENSOR_TOL = 2e-3;
const LOSS_TOL = 1e-3;

const mirrors: string[] = [];
afterAll(() => mirrors.forEach((d) => rmSync(join(d, "../../.."), { recursive: true, force: true })));

const quiet: Reporter = { step: () => undefined, eval: () => undefined, saved: () => undefined, info: () => undefined };

interface Trained {
  losses: number[];
  out: string;
  /** What the backend held after the last step, and how to load the export back. */
  values: Map<string, Float32Array>;
  load: LoadAdapterOptions;
}

async function train(c: ConformanceCase, device: "reference" | "gpu", dev?: Device): Promise<Trained> {
  const dir = mirrorCase(c);
  mirrors.push(dir);
  const file = join(dir, "run.peft");
  const s = await prepareSession(readFileSync(file), file);
  const backend: TrainBackend =
    device === "gpu" ? await openGpuBackend(s, dev) : new ReferenceBackend(s.trainGraph, s.evalGraph, await allParams(s), s.spec.train.seed, adaloraAllocation(s));
  try {
    const r = await runTraining(s, backend, quiet);
    const exported = s.spec.export.find((e) => e.what === "adapter");
    if (!exported) throw new Error(`${file}: the case exports no adapter`);
    return { losses: r.losses, out: join(dir, exported.dir), values: await backend.values(), load: { spec: s.spec, graph: s.trainGraph, profile: s.profile } };
  } finally {
    backend.dispose();
  }
}

/**
 * The export, loaded back with `init from`'s loader, is what the run trained, bit for bit. AdaLoRA's
 * export is cut to the rank pattern: the pruned triplets come back as zeros (E was zero there).
 */
async function expectRoundTrip(got: Trained, label: string): Promise<void> {
  const back = await loadAdapter(got.out, got.load);
  const pattern = (JSON.parse(readFileSync(join(got.out, "adapter_config.json"), "utf8")) as { rank_pattern?: Record<string, boolean[]> | null }).rank_pattern ?? {};
  for (const [name, loaded] of back) {
    const trained = got.values.get(name)!;
    const part = /\.lora_([AEB])$/.exec(name)?.[1];
    const keep = part ? pattern[name.replace(/\.lora_[AEB]$/, ".lora_E")] : undefined;
    if (!keep) {
      expect(Buffer.from(loaded.buffer).equals(Buffer.from(trained.buffer)), `${label}: ${name} round trip`).toBe(true);
      continue;
    }
    const r = keep.length;
    const want = trained.map((v, i) => (keep[part === "B" ? i % r : Math.floor(i / (trained.length / r))] ? v : 0));
    expect(Array.from(loaded), `${label}: ${name} round trip`).toEqual(Array.from(want));
  }
}

async function expectConforms(c: ConformanceCase, got: Trained, label: string): Promise<void> {
  const peft = await readAdapter(join(c.dir, "peft-trained"));
  const mine = await readAdapter(got.out);
  expect([...mine.tensors.keys()].sort(), `${label}: tensor keys`).toEqual([...peft.tensors.keys()].sort());
  let worst = 0;
  let worstKey = "";
  for (const [key, want] of peft.tensors) {
    const have = mine.tensors.get(key)!;
    expect(have.shape, `${label}: shape of ${key}`).toEqual(want.shape);
    const d = maxDiff(have.data, want.data);
    if (d > worst) [worst, worstKey] = [d, key];
  }
  expect(mine.config["rank_pattern"] ?? null, `${label}: rank_pattern`).toEqual(peft.config["rank_pattern"] ?? null);
  const lossDiff = Math.max(...c.losses.map((l, i) => Math.abs((got.losses[i] ?? NaN) - l)));
  console.log(`${label}: max tensor diff ${worst.toExponential(2)} (${worstKey}), max loss diff ${lossDiff.toExponential(2)}; losses ${got.losses.map((l) => l.toFixed(4)).join(" ")}`);
  expect(got.losses.length, `${label}: optimizer steps`).toBe(c.losses.length);
  expect(lossDiff, `${label}: per-step losses ${got.losses.join(" ")} vs PEFT's ${c.losses.join(" ")}`).toBeLessThanOrEqual(LOSS_TOL);
  expect(worst, `${label}: ${worstKey}`).toBeLessThanOrEqual(TENSOR_TOL);
  await expectRoundTrip(got, label);
}

const cases = discoverCases();

describe("PEFT conformance cases", () => {
  it("finds the cases and PEFT's losses in the README", () => {
    expect(cases.map((c) => c.name)).toEqual(expect.arrayContaining(["adalora", "ia3", "lora", "prefix", "prompt"]));
    for (const c of cases) expect(c.losses.length, c.name).toBeGreaterThan(0);
  });

  for (const c of cases) {
    it(`${c.name}: the reference device trains as PEFT`, async () => {
      await expectConforms(c, await train(c, "reference"), `${c.name} (reference)`);
    });
    it(`${c.name}: the WebGPU device trains as PEFT`, async () => {
      await expectConforms(c, await train(c, "gpu", await testDevice()), `${c.name} (gpu)`);
    });
  }
});
