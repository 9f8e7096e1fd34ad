// Base weights stream from the checkpoint into device buffers one tensor at a time: the session
// keeps none of them in host memory, and what lands on the device is exactly the stored value
// converted as its home needs (BF16 and F16 widened for f32 homes; F16 bits kept and BF16 rounded
// for the f16 homes precision f16 gives frozen linear weights), checked bit for bit against the
// conversions of src/runtime/io/half.ts.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { builtinConfig, initBuiltinWeights } from "../../src/models/builtin.js";
import { profileFromConfig } from "../../src/models/profile.js";
import { openGpuBackend } from "../../src/runtime/gpu/index.js";
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from "../../src/runtime/io/half.js";
import { writeSafetensors, type TensorToWrite } from "../../src/runtime/io/index.js";
import { prepareSession } from "../../src/runtime/train/session.js";
import { testDevice } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "pefc-stream-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Stored dtype by tensor: attention projections BF16, the rest of the 2-D weights F16, vectors F32. */
const storedAs = (name: string, rank: number): "BF16" | "F16" | "F32" => (rank < 2 ? "F32" : /q_proj|k_proj|v_proj|o_proj/.test(name) ? "BF16" : "F16");

describe("streamed base weights", () => {
  it("reach f32 and f16 device homes converted exactly, never all in host memory", async () => {
    const config = builtinConfig("tiny-llama")!;
    const profile = profileFromConfig(config, dir);
    if (typeof profile === "string") throw new Error(profile);
    const values = initBuiltinWeights(profile, 5);
    if (typeof values === "string") throw new Error(values);
    const tensors: TensorToWrite[] = [];
    const shapes = new Map(profile.modules.flatMap((m) => m.params.map((p) => [p.name, p.shape] as const)));
    for (const [name, data] of values) tensors.push({ name, dtype: storedAs(name, shapes.get(name)!.length), shape: shapes.get(name)!, data });
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
    writeFileSync(join(dir, "data.jsonl"), '{"input_ids": [5, 9, 12, 7]}\n{"input_ids": [3, 4]}\n');
    const spec = `model "${dir}";\ndata train "data.jsonl";\nfreeze base;\nlora r=2 on q_proj;\ntrain { steps = 1; precision = f16; }\n`;
    writeFileSync(join(dir, "run.peft"), spec);

    const s = await prepareSession(new TextEncoder().encode(spec), join(dir, "run.peft"));
    const baseNames = new Set(s.base.names);
    expect(baseNames.size).toBe(values.size);
    expect([...s.params.keys()].filter((n) => baseNames.has(n))).toEqual([]);

    const dev = await testDevice();
    const b = await openGpuBackend(s, dev);
    try {
      const homes = b.program.params.filter((p) => baseNames.has(p.name));
      const raw = await b.exec.readMany(homes);
      const kinds = new Set<string>();
      homes.forEach((p, i) => {
        const v = values.get(p.name)!;
        const stored = storedAs(p.name, p.shape.length);
        const asStored = stored === "BF16" ? bf16ArrayToF32(f32ArrayToBf16(v)) : stored === "F16" ? f16ArrayToF32(f32ArrayToF16(v)) : v;
        const got = p.dtype === "f16" ? new Uint16Array(raw[i]!, 0, v.length) : new Float32Array(raw[i]!, 0, v.length);
        const want = p.dtype === "f16" ? f32ArrayToF16(asStored) : asStored;
        kinds.add(`${stored}->${p.dtype}`);
        expect(got, p.name).toEqual(want);
      });
      // Every conversion path was exercised.
      expect([...kinds].sort()).toEqual(["BF16->f16", "F16->f16", "F32->f32"]);
    } finally {
      b.dispose();
    }
  }, 120_000);
});
