// Crash-safe writes. A checkpoint that is half written when the process dies (power loss, OOM kill,
// Ctrl-C) must never replace a good one, so nothing is written in place: files are written to a
// temporary name, flushed to disk, then renamed over the target (rename is atomic on POSIX), and
// the directory is flushed so the rename itself survives a crash.
//
// Folders (adapter checkpoints) are replaced through three fixed sidecar names beside FINAL:
//   FINAL.pefc-building  being written; never trusted
//   FINAL.pefc-ready     complete and flushed, waiting to be moved into place
//   FINAL.pefc-old       the previous FINAL, moved aside; deleted once the new one is in place
// Steps: build into -building, flush it, rename it to -ready; rename FINAL to -old; rename -ready
// to FINAL; delete -old. Recovery rule (recoverDir, run at start-up and before every replacement):
//   -building exists            → delete it (the build may be incomplete)
//   -ready exists               → finish the replacement: FINAL (if any) goes, -ready becomes FINAL
//   -old exists, FINAL exists   → delete -old (the new folder is already in place)
//   -old exists, FINAL missing  → rename -old back to FINAL
// After recovery FINAL is always a complete folder, old or new (or absent if there never was one).
// Two processes replacing the same folder at once are not supported.

import { open, rename, rm, mkdir, readdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { UserError } from "./errors.js";

export interface AtomicOptions {
  /**
   * For tests: called after each durable step with the step's name. If it throws, the operation
   * stops right there and cleans nothing up, exactly as a crash at that point would.
   */
  crashAt?: (stage: string) => void | Promise<void>;
}

export type FileStage = "written" | "renamed";
export type DirStage = "built" | "ready" | "old-moved-aside" | "new-in-place" | "old-removed";

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
  opts: AtomicOptions = {},
): Promise<void> {
  const target = resolve(path);
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const chunks = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
  const crash = crashPoint(opts);
  try {
    const fh = await open(tmp, "wx");
    try {
      for (const c of chunks) {
        let done = 0;
        while (done < c.byteLength) done += (await fh.write(c, done, c.byteLength - done)).bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await crash.at("written");
    await rename(tmp, target);
    await crash.at("renamed");
    await fsyncDir(dir);
  } catch (e) {
    if (crash.happened) throw e;
    await rm(tmp, { force: true });
    throw asUserError(e, target);
  }
}

export function dirSidecars(finalDir: string): { building: string; ready: string; old: string } {
  const f = resolve(finalDir);
  return { building: `${f}.pefc-building`, ready: `${f}.pefc-ready`, old: `${f}.pefc-old` };
}

/** Builds a new folder with `build(tmpDir)` and swaps it in for `finalDir` (see the header). */
export async function replaceDirAtomic(
  finalDir: string,
  build: (tmpDir: string) => Promise<void>,
  opts: AtomicOptions = {},
): Promise<void> {
  const final = resolve(finalDir);
  const parent = dirname(final);
  const side = dirSidecars(final);
  const crash = crashPoint(opts);
  await mkdir(parent, { recursive: true }).catch((e: unknown) => {
    throw asUserError(e, parent);
  });
  try {
    await recoverDir(final);
    await mkdir(side.building);
  } catch (e) {
    throw asUserError(e, final);
  }
  try {
    await build(side.building);
  } catch (e) {
    await rm(side.building, { recursive: true, force: true });
    throw e;
  }
  try {
    await fsyncTree(side.building);
    await crash.at("built");
    await rename(side.building, side.ready);
    await fsyncDir(parent);
    await crash.at("ready");
    if (await exists(final)) {
      await rename(final, side.old);
      await fsyncDir(parent);
      await crash.at("old-moved-aside");
    }
    await rename(side.ready, final);
    await fsyncDir(parent);
    await crash.at("new-in-place");
    await rm(side.old, { recursive: true, force: true });
    await fsyncDir(parent);
    await crash.at("old-removed");
  } catch (e) {
    if (crash.happened) throw e;
    await recoverDir(final).catch(() => undefined);
    throw asUserError(e, final);
  }
}

/**
 * Completes or rolls back a replacement of `finalDir` interrupted by a crash, following the
 * recovery rule in the header. Returns what it did (empty when there was nothing to do).
 */
export async function recoverDir(finalDir: string): Promise<string[]> {
  const final = resolve(finalDir);
  const parent = dirname(final);
  const side = dirSidecars(final);
  const done: string[] = [];
  if (await exists(side.building)) {
    await rm(side.building, { recursive: true, force: true });
    done.push("discarded partial build");
  }
  if (await exists(side.ready)) {
    if (await exists(final)) {
      await rm(side.old, { recursive: true, force: true });
      await rename(final, side.old);
      await fsyncDir(parent);
    }
    await rename(side.ready, final);
    await fsyncDir(parent);
    done.push("completed replacement");
  }
  if (await exists(side.old)) {
    if (await exists(final)) {
      await rm(side.old, { recursive: true, force: true });
      done.push("removed old copy");
    } else {
      await rename(side.old, final);
      done.push("restored old copy");
    }
    await fsyncDir(parent);
  }
  return done;
}

function crashPoint(opts: AtomicOptions): { happened: boolean; at(stage: string): Promise<void> } {
  const state = {
    happened: false,
    async at(stage: string): Promise<void> {
      if (!opts.crashAt) return;
      try {
        await opts.crashAt(stage);
      } catch (e) {
        state.happened = true;
        throw e;
      }
    },
  };
  return state;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/** Flushes every file and folder under `dir`, then `dir` itself. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) await fsyncFile(p);
  }
  await fsyncDir(dir);
}

async function fsyncFile(p: string): Promise<void> {
  const fh = await open(p, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch (e) {
    // Some platforms (Windows) cannot open or flush a directory; the rename is still atomic there.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "EBADF") throw e;
  } finally {
    await fh?.close();
  }
}

function asUserError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (e instanceof UserError || typeof code !== "string") return e;
  const why = code === "EROFS" ? "read-only file system" : code === "EACCES" || code === "EPERM" ? "permission denied"
    : code === "ENOSPC" || code === "EDQUOT" ? "no space left on the device; nothing there was replaced, so what it held before (if anything) is intact. Free some space, then resume from the last checkpoint"
    : (e as Error).message;
  return new UserError(`error P902: ${path}: cannot write: ${why}`, { file: path });
}
