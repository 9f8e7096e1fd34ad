// PyTorch checkpoints written by Debian's torch (test/models/chatglm2_fixtures.py): values read
// through the zip and pickle readers must equal what torch.load reads (views.json, dumped by torch),
// views included; every way a checkpoint can be bad fails with a CheckpointError of its kind naming
// the file, and the tensor where one is at fault.

import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointError, f32ArrayToF16, missingModelFiles, openCheckpoint, openTorchFile, type CheckpointErrorKind } from "../../src/runtime/io/index.js";
import { chatglm2Fixtures } from "../models/chatglm2-fixtures.js";

let fx: string;
let scratch: string;
beforeAll(() => {
  fx = chatglm2Fixtures();
  scratch = mkdtempSync(join(tmpdir(), "pefc-torch-bin-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function failure(kind: CheckpointErrorKind, open: () => Promise<unknown>): Promise<CheckpointError> {
  try {
    await open();
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    expect((e as CheckpointError).kind).toBe(kind);
    expect((e as CheckpointError).message).toContain((e as CheckpointError).file!);
    return e as CheckpointError;
  }
  throw new Error(`expected a ${kind} CheckpointError`);
}

describe("torch.save zip files", () => {
  it("read tensors, views and storage offsets as torch.load does", async () => {
    const want = JSON.parse(readFileSync(join(fx, "views.json"), "utf8")) as Record<string, { shape: number[]; values: number[]; f16_bits: number[] }>;
    const ck = await openTorchFile(join(fx, "views.bin"));
    expect(ck.format).toBe("torch");
    expect([...ck.tensors.keys()]).toEqual(Object.keys(want));
    expect(ck.get("plain_bf16").dtype).toBe("BF16");
    expect(ck.get("slice_f16").dtype).toBe("F16");
    expect(ck.get("transposed_f32").view).toBeDefined();
    expect(ck.get("rows_f32").view).toBeUndefined(); // contiguous at an offset: a plain byte range
    for (const [name, w] of Object.entries(want)) {
      if (name === "step") continue;
      expect(ck.get(name).shape).toEqual(w.shape);
      expect(Array.from(await ck.readF32(name)), name).toEqual(w.values.map(Math.fround));
      expect(Array.from(await ck.readF16(name)), name).toEqual(w.f16_bits);
    }
    const step = await ck.read("step");
    expect(step.dtype).toBe("I64");
    expect(Array.from(step.data as BigInt64Array)).toEqual([7n, 8n, 9n]);
  });

  it("refuse a pickle that names any other global, by name", async () => {
    const e = await failure("refused-global", () => openTorchFile(join(fx, "evil.bin")));
    expect(e.message).toMatch(/the global (__builtin__|builtins)\.print,/); // protocol 2 spells builtins so
  });

  it("name the legacy pre-1.6 format", async () => {
    const e = await failure("legacy-format", () => openTorchFile(join(fx, "legacy.bin")));
    expect(e.message).toMatch(/legacy format \(PyTorch before 1\.6/);
  });

  it("name a dtype pefc does not read, and the tensor", async () => {
    const e = await failure("unsupported-dtype", () => openTorchFile(join(fx, "complex.bin")));
    expect(e.tensor).toBe("w");
    expect(e.message).toContain("torch.ComplexFloatStorage");
    const ints = await openTorchFile(join(fx, "views.bin"));
    const f = await failure("unsupported-dtype", () => ints.readF32("step"));
    expect(f.tensor).toBe("step");
  });

  it("name a storage entry cut short inside a valid zip", async () => {
    const e = await failure("truncated", () => openTorchFile(join(fx, "short-entry.bin")));
    expect(e.message).toMatch(/data\/0 holds \d+ bytes but .* need \d+/);
    expect(e.tensor).toBeDefined();
  });

  it("name a file cut short", async () => {
    const file = join(scratch, "cut.bin");
    copyFileSync(join(fx, "views.bin"), file);
    truncateSync(file, Math.floor(statSync(file).size * 0.6));
    await failure("truncated", () => openTorchFile(file));
  });

  it("name a zip64 directory pointing past the end of the file (offsets beyond 2^53 too)", async () => {
    const bytes = readFileSync(join(fx, "views.bin"));
    const at = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07])); // the zip64 end-of-directory locator torch writes
    expect(at).toBeGreaterThan(0);
    for (const offset of [BigInt(bytes.length) * 2n, 0xfff0_0000_0000_0000n]) {
      const b = Buffer.from(bytes);
      b.writeBigUInt64LE(offset, at + 8);
      const file = join(scratch, `zip64-${offset}.bin`);
      writeFileSync(file, b);
      await failure("truncated", () => openTorchFile(file));
    }
  });

  it("name compressed entries (not what torch.save writes)", async () => {
    await failure("compressed", () => openTorchFile(join(fx, "deflated.bin")));
  });

  it("name a file that is not a checkpoint at all", async () => {
    const file = join(scratch, "text.bin");
    writeFileSync(file, "not a checkpoint\n");
    await failure("corrupt", () => openTorchFile(file));
  });
});

describe("sharded pytorch_model.bin folders", () => {
  const copy = (name: string): string => {
    const dir = join(scratch, name);
    cpSync(join(fx, "chatglm2"), dir, { recursive: true });
    return dir;
  };

  it("open through the index, every tensor bf16, read as f32 and f16 exactly as from safetensors", async () => {
    const ck = await openCheckpoint(join(fx, "chatglm2"));
    expect(ck.format).toBe("torch");
    expect(ck.files.map((f) => f.slice(f.lastIndexOf("/") + 1))).toEqual(Array.from({ length: 7 }, (_, i) => `pytorch_model-0000${i + 1}-of-00007.bin`));
    expect(ck.tensors.size).toBe(18);
    expect([...ck.tensors.values()].every((t) => t.dtype === "BF16")).toBe(true);
    const twin = await openCheckpoint(join(fx, "chatglm2-st"));
    for (const name of ck.tensors.keys()) {
      expect(Array.from(await ck.readF32(name)), name).toEqual(Array.from(await twin.readF32(name)));
      expect(Array.from(await ck.readF16(name)), name).toEqual(Array.from(f32ArrayToF16(await twin.readF32(name))));
    }
  });

  it("name a missing shard", async () => {
    const dir = copy("no-shard");
    unlinkSync(join(dir, "pytorch_model-00003-of-00007.bin"));
    const e = await failure("missing-shard", () => openCheckpoint(dir));
    expect(e.message).toContain("pytorch_model-00003-of-00007.bin");
    expect(e.tensor).toBeDefined();
    // What pefc plan notes, from the index alone.
    expect(await missingModelFiles(dir)).toEqual([`${join(dir, "pytorch_model-00003-of-00007.bin")} is missing (pytorch_model.bin.index.json names it)`]);
    expect(await missingModelFiles(join(fx, "chatglm2"))).toEqual([]);
  });

  it("name a tensor the index lists but its shard lacks", async () => {
    const dir = copy("bad-index");
    const index = JSON.parse(readFileSync(join(dir, "pytorch_model.bin.index.json"), "utf8")) as { weight_map: Record<string, string> };
    index.weight_map["transformer.encoder.layers.9.mlp.dense_4h_to_h.weight"] = "pytorch_model-00002-of-00007.bin";
    writeFileSync(join(dir, "pytorch_model.bin.index.json"), JSON.stringify(index));
    const e = await failure("absent-tensor", () => openCheckpoint(dir));
    expect(e.tensor).toBe("transformer.encoder.layers.9.mlp.dense_4h_to_h.weight");
    expect(e.message).toContain("pytorch_model.bin.index.json");
  });
});
