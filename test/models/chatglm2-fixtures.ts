/**
 * The fixtures chatglm2_fixtures.py writes with Debian's torch and python3-sentencepiece, made once
 * per script version into the system temp folder (keyed by the script's hash, so an edit remakes
 * them) and shared by the test files that read them; written to a fresh folder and renamed into
 * place, so test files running at once never see half a set.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./chatglm2_fixtures.py", import.meta.url));
const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

export function chatglm2Fixtures(): string {
  const hash = createHash("sha256").update(readFileSync(SCRIPT)).digest("hex").slice(0, 12);
  const dir = join(tmpdir(), `pefc-torch-fixtures-${hash}`);
  if (existsSync(join(dir, "tokenizer.json"))) return dir;
  const work = mkdtempSync(join(tmpdir(), "pefc-torch-fixtures-tmp-"));
  const r = spawnSync("/usr/bin/python3", [SCRIPT, work, ROOT], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`chatglm2_fixtures.py failed (${r.status}):\n${r.stderr}`);
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true }); // another test file made them first
  }
  return dir;
}
