// Which files pefc may write. Every folder pefc writes (checkpoint roots, adapter folders, merged
// checkpoints, exports) carries a marker file, OWNER_FILE; a folder without it is the user's.
// Before any work, each output path of a command is checked (checkOutputs): pefc replaces or
// writes into only what is absent, empty or its own, never a regular file or a folder of the
// user's unless --overwrite says so, and never a folder holding the command's own inputs (the
// spec, its data, the model), whatever the flags. Locations it cannot write fail here, before
// the first step, rather than after an hour of training.

import { randomBytes } from "node:crypto";
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, realpathSync, statSync, unlinkSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";

export const OWNER_FILE = ".pefc-output";

export type OutputKind = "checkpoints" | "adapter" | "merged" | "export";

/** One place a command writes. */
export interface OutputTarget {
  path: string;
  /** `checkpoints`: a root pefc writes checkpoint-N folders into; the others replace `path` whole. */
  kind: OutputKind;
  /** How the user asked for it, for messages: `save every 2 steps to "out"`, `--out`. */
  label: string;
}

export interface OutputRules {
  /** --overwrite: a regular file or a folder of the user's at an output path may be replaced. */
  overwrite: boolean;
  /** A folder pefc wrote may be replaced without asking (merge and export: no run to continue). */
  replaceOwn?: boolean;
  /** --resume DIR: outputs of the run being resumed may be replaced or continued. */
  resume?: string;
  /** Inputs no output may hold or be: the spec, its data files, the model folder, an adapter read. */
  inputs: readonly { path: string; what: string }[];
}

export interface OutputProblem {
  code: "P902" | "P903" | "P904" | "P905" | "P906" | "P907" | "P908";
  target: OutputTarget;
  args: string[];
}

/** The marker's text: what wrote the folder, so a reader can tell pefc's folders from the user's. */
export function ownerMarker(kind: OutputKind, spec?: string): string {
  return JSON.stringify({ written_by: "pefc", kind, ...(spec ? { spec } : {}) }) + "\n";
}

export async function writeOwnerMarker(dir: string, kind: OutputKind, spec?: string): Promise<void> {
  await writeFile(join(dir, OWNER_FILE), ownerMarker(kind, spec));
}

export function isOwned(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, OWNER_FILE), "utf8")) as { written_by?: string }).written_by === "pefc";
  } catch {
    return false;
  }
}

/** checkpoint-N folders under `root`, by step. */
export function checkpointSteps(root: string): number[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = /^checkpoint-(\d+)$/.exec(n);
    return m ? [Number(m[1])] : [];
  }).sort((a, b) => a - b);
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    const parent = dirname(p);
    return parent === p ? p : join(real(parent), p.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
  }
}

function within(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === "" || (!r.startsWith("..") && !r.startsWith(sep) && r !== "..");
}

function kindOf(p: string): "none" | "file" | "dir" {
  try {
    return lstatSync(p).isDirectory() || statSync(p).isDirectory() ? "dir" : "file";
  } catch {
    return "none";
  }
}

/** Why `dir` (a folder that will be created or written into) cannot be written, or undefined. */
function unwritable(dir: string): string | undefined {
  let at = resolve(dir);
  while (!existsSync(at)) {
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  if (kindOf(at) !== "dir") return `${at} is a file, not a folder`;
  const probe = join(at, `.pefc-probe-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    closeSync(openSync(probe, "wx"));
    unlinkSync(probe);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "EROFS" ? "read-only file system" : code === "EACCES" || code === "EPERM" ? "permission denied" : code === "ENOSPC" ? "no space left" : (e as Error).message;
    return at === resolve(dir) ? why : `${why} in ${at}`;
  }
}

/**
 * Every problem with writing `targets` (in the order the command writes them), before anything is
 * written. An empty list means each target is absent, empty, or pefc's own and not an earlier
 * run's, or the rules allow replacing it.
 */
export function checkOutputs(targets: readonly OutputTarget[], rules: OutputRules): OutputProblem[] {
  const problems: OutputProblem[] = [];
  const failed: string[] = [];
  const resume = rules.resume ? real(resolve(rules.resume)) : undefined;
  const inputs = rules.inputs.map((i) => ({ ...i, real: real(resolve(i.path)) }));
  targets.forEach((t, i) => {
    const path = resolve(t.path);
    const rp = real(path);
    const add = (code: OutputProblem["code"], ...args: string[]) => {
      problems.push({ code, target: t, args: [path, ...args] });
      failed.push(rp);
    };
    // Outputs inside one that already failed report nothing more: one mistake, one error.
    if (failed.some((f) => within(rp, f))) return;
    const input = inputs.find((x) => within(x.real, rp));
    if (input) return add("P903", input.what, input.path);
    for (const earlier of targets.slice(0, i)) {
      const e = real(resolve(earlier.path));
      const replacesWhole = t.kind !== "checkpoints";
      if (e === rp || (replacesWhole && within(e, rp))) return add("P908", earlier.label);
    }
    const kind = kindOf(path);
    if (kind === "file") {
      if (!rules.overwrite) return add("P904");
    } else if (kind === "dir") {
      let names: string[] = [];
      try {
        names = readdirSync(path);
      } catch (e) {
        return add("P902", (e as Error).message);
      }
      const content = names.filter((n) => n !== OWNER_FILE);
      if (content.length > 0 && !isOwned(path)) {
        if (!rules.overwrite) return add("P905", String(content.length), content.slice(0, 3).join(", ") + (content.length > 3 ? ", …" : ""));
      } else if (content.length > 0 && !rules.overwrite && !rules.replaceOwn) {
        const resuming = resume !== undefined && (t.kind === "checkpoints" ? within(resume, rp) : true);
        if (!resuming) {
          const steps = t.kind === "checkpoints" ? checkpointSteps(path) : [];
          if (steps.length > 0) return add("P906", `checkpoint-${steps[steps.length - 1]}`, join(path, `checkpoint-${steps[steps.length - 1]}`));
          return add("P907");
        }
      }
    }
    const why = unwritable(t.kind === "checkpoints" && kind === "dir" ? path : dirname(path));
    if (why) add("P902", why);
  });
  return problems;
}

/** Makes `root` a checkpoint root of this run: created (in place of a file --overwrite allowed) with its marker. */
export async function claimRoot(root: string, spec: string): Promise<void> {
  if (kindOf(root) === "file") await rm(root, { force: true });
  await mkdir(root, { recursive: true });
  if (!isOwned(root)) await writeOwnerMarker(root, "checkpoints", spec);
}

/**
 * With --overwrite, what an earlier run left in a checkpoint root (other checkpoint-N folders,
 * metrics, the curve) goes once this run's first checkpoint `keepStep` is in place, so `keep N`
 * and --resume see this run's folders only.
 */
export async function clearEarlierRun(root: string, keepStep: number): Promise<void> {
  for (const n of await readdir(root)) {
    const m = /^checkpoint-(\d+)$/.exec(n);
    if ((m && Number(m[1]) !== keepStep) || n === "metrics.jsonl" || n === "loss.svg") await rm(join(root, n), { recursive: true, force: true });
  }
}
