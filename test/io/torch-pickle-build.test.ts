// A pickle's BUILD opcode assigns a state onto the object below it. Tensors and storages rebuilt
// from a checkpoint must keep the size, offset and element count they were checked with, and only
// a storage the archive names (by persistent id) may back a tensor.

import { describe, expect, it } from "vitest";
import { CheckpointError } from "../../src/runtime/io/index.js";
import { unpickleStateDict } from "../../src/runtime/io/torch-pickle.js";

const b = (...parts: (string | number[] | Buffer)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));
const int = (n: number) => b("J", [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff]);
const str = (s: string) => b("X", [s.length, 0, 0, 0], s);
const ints = (xs: number[]) => b("(", ...xs.map(int), "t");
const storage = (numel: number) => b("(", str("storage"), "ctorch\nFloatStorage\n", str("0"), str("cpu"), int(numel), "tQ");
const rebuild = (store: Buffer, size: number[]) => b("ctorch._utils\n_rebuild_tensor_v2\n(", store, int(0), ints(size), ints([1]), [0x89], "ccollections\nOrderedDict\n)Rt", "R");
const build = (field: string, value: Buffer) => b("}", str(field), value, "s", "b");
const stateDict = (value: Buffer) => b([0x80, 0x02], "ccollections\nOrderedDict\n)R", str("w"), value, "s.");

function refused(pkl: Buffer): CheckpointError {
  try {
    unpickleStateDict(pkl, "x.bin");
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    expect((e as CheckpointError).kind).toBe("corrupt");
    expect((e as CheckpointError).message).toContain("x.bin");
    return e as CheckpointError;
  }
  throw new Error("the pickle was accepted");
}

describe("BUILD on what the unpickler rebuilt", () => {
  it("reads the untampered pickle", () => {
    const t = unpickleStateDict(stateDict(rebuild(storage(6), [6])), "x.bin").get("w")!;
    expect(t.shape).toEqual([6]);
    expect(t.storage.numel).toBe(6);
  });

  it("refuses a tensor whose size, offset or stride BUILD rewrites", () => {
    for (const [field, value] of [["shape", ints([1 << 20])], ["offset", int(1 << 30)], ["strides", ints([4096])]] as const) {
      refused(stateDict(b(rebuild(storage(6), [6]), build(field, value))));
    }
  });

  it("refuses a storage whose element count BUILD grows", () => {
    refused(stateDict(rebuild(b(storage(6), build("numel", int(1 << 20))), [1 << 20])));
  });

  it("refuses a storage class dressed up as a storage", () => {
    const fake = b("ctorch\nFloatStorage\n", "}", str("key"), str("0"), "s", str("numel"), int(1 << 20), "s", str("dtype"), str("F32"), "s", "b");
    refused(stateDict(rebuild(fake, [1 << 20])));
  });
});
