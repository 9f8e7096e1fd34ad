// Crashes are simulated by throwing from the crashAt hook, which stops the operation at that
// step without any cleanup, leaving the disk exactly as a killed process would.

import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { dirSidecars, recoverDir, replaceDirAtomic, writeFileAtomic } from "../../src/runtime/io/index.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "pefc-atomic-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

class Crash extends Error {}

const crashAt = (stage: string) => (s: string) => {
  if (s === stage) throw new Crash(stage);
};

async function snapshot(dir: string): Promise<Record<string, string> | undefined> {
  try {
    const out: Record<string, string> = {};
    for (const f of (await readdir(dir)).sort()) out[f] = await readFile(join(dir, f), "utf8");
    return out;
  } catch {
    return undefined;
  }
}

const OLD = { "adapter_config.json": '{"r":4}', "adapter_model.safetensors": "old weights" };
const NEW = { "adapter_config.json": '{"r":8}', "adapter_model.safetensors": "new weights", "README.md": "new" };

async function buildFrom(files: Record<string, string>): Promise<(tmp: string) => Promise<void>> {
  return async (tmp) => {
    for (const [name, text] of Object.entries(files)) await writeFile(join(tmp, name), text);
  };
}

describe("writeFileAtomic", () => {
  it("writes string, bytes and chunked data", async () => {
    const p = join(root, "a.txt");
    await writeFileAtomic(p, "hello");
    expect(await readFile(p, "utf8")).toBe("hello");
    await writeFileAtomic(p, [Buffer.from("ab"), Buffer.from("cd")]);
    expect(await readFile(p, "utf8")).toBe("abcd");
    expect(await readdir(root)).toEqual(["a.txt"]);
  });

  for (const stage of ["written", "renamed"]) {
    it(`a crash after '${stage}' leaves either the old or the new file complete`, async () => {
      const p = join(root, "f.json");
      await writeFileAtomic(p, "old contents");
      await expect(writeFileAtomic(p, "new contents", { crashAt: crashAt(stage) })).rejects.toBeInstanceOf(Crash);
      expect(await readFile(p, "utf8")).toBe(stage === "written" ? "old contents" : "new contents");
    });
  }

  it("an ordinary failure removes its temp file and names the path", async () => {
    const p = join(root, "missing-dir", "f.txt");
    await expect(writeFileAtomic(p, "x")).rejects.toThrow(/missing-dir\/f.txt: cannot write/);
    expect(await readdir(root)).toEqual([]);
  });
});

describe("replaceDirAtomic", () => {
  it("creates, then replaces, a folder, leaving no sidecars", async () => {
    const final = join(root, "ckpt");
    await replaceDirAtomic(final, await buildFrom(OLD));
    expect(await snapshot(final)).toEqual(OLD);
    await replaceDirAtomic(final, await buildFrom(NEW));
    expect(await snapshot(final)).toEqual(NEW);
    expect(await readdir(root)).toEqual(["ckpt"]);
  });

  it("a failing build keeps the old folder and discards the partial one", async () => {
    const final = join(root, "ckpt");
    await replaceDirAtomic(final, await buildFrom(OLD));
    await expect(
      replaceDirAtomic(final, async (tmp) => {
        await writeFile(join(tmp, "adapter_config.json"), "half");
        throw new Error("disk full");
      }),
    ).rejects.toThrow("disk full");
    expect(await snapshot(final)).toEqual(OLD);
    expect(await readdir(root)).toEqual(["ckpt"]);
  });

  const stages = ["built", "ready", "old-moved-aside", "new-in-place", "old-removed"];
  it("passes through its stages in order", async () => {
    const final = join(root, "ckpt");
    const seen: string[] = [];
    await replaceDirAtomic(final, await buildFrom(OLD), { crashAt: (s) => void seen.push(s) });
    expect(seen).toEqual(stages.filter((s) => s !== "old-moved-aside"));
    seen.length = 0;
    await replaceDirAtomic(final, await buildFrom(NEW), { crashAt: (s) => void seen.push(s) });
    expect(seen).toEqual(stages);
  });

  for (const stage of stages) {
    it(`a crash after '${stage}' recovers to a complete old or new folder`, async () => {
      const final = join(root, "ckpt");
      await replaceDirAtomic(final, await buildFrom(OLD));
      await expect(replaceDirAtomic(final, await buildFrom(NEW), { crashAt: crashAt(stage) })).rejects.toBeInstanceOf(Crash);

      // Right after the crash, whatever is at FINAL (if anything) is complete.
      const atCrash = await snapshot(final);
      if (atCrash !== undefined) expect([OLD, NEW]).toContainEqual(atCrash);
      if (stage === "old-moved-aside") expect(atCrash).toBeUndefined(); // the one window recovery must close

      const actions = await recoverDir(final);
      const after = await snapshot(final);
      // Once the new folder is complete (renamed to -ready) the replacement is finished, else rolled back.
      expect(after).toEqual(stage === "built" ? OLD : NEW);
      expect(actions.length > 0).toBe(stage !== "old-removed");
      expect(await readdir(root)).toEqual(["ckpt"]);
      // A second recovery has nothing left to do.
      expect(await recoverDir(final)).toEqual([]);
    });

    if (stage === "old-moved-aside") continue; // a first save has no old folder to move
    it(`a crash after '${stage}' on a first save leaves nothing or the new folder`, async () => {
      const final = join(root, "fresh");
      await expect(replaceDirAtomic(final, await buildFrom(NEW), { crashAt: crashAt(stage) })).rejects.toBeInstanceOf(Crash);
      await recoverDir(final);
      expect(await snapshot(final)).toEqual(stage === "built" ? undefined : NEW);
      expect(await readdir(root)).toEqual(stage === "built" ? [] : ["fresh"]);
    });
  }

  it("a crash in the middle of the build is discarded at recovery", async () => {
    const final = join(root, "ckpt");
    await replaceDirAtomic(final, await buildFrom(OLD));
    const side = dirSidecars(final);
    // What a process killed mid-build leaves: a partial -building folder.
    await mkdir(side.building);
    await writeFile(join(side.building, "adapter_config.json"), '{"r":');
    expect(await recoverDir(final)).toEqual(["discarded partial build"]);
    expect(await snapshot(final)).toEqual(OLD);
  });

  it("the next replacement recovers first", async () => {
    const final = join(root, "ckpt");
    await replaceDirAtomic(final, await buildFrom(OLD));
    await expect(replaceDirAtomic(final, await buildFrom(NEW), { crashAt: crashAt("old-moved-aside") })).rejects.toBeInstanceOf(Crash);
    const third = { "adapter_config.json": '{"r":16}' };
    await replaceDirAtomic(final, await buildFrom(third));
    expect(await snapshot(final)).toEqual(third);
    expect(await readdir(root)).toEqual(["ckpt"]);
  });
});
