/**
 * The data part of a bundle, which runs on the Python standard library alone: data_pipeline.py,
 * data_config.json, the data files (data/) and, for a model folder, the files its tokenizer is
 * read from (tokenizer/). Built-in models tokenize by byte and need none.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Session } from "../runtime/train/session.js";
import { bundledDataFiles, dataConfig, type TokenizerRef } from "./data-config.js";
import { readTemplate } from "./templates.js";

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "config.json"];

/** Writes the data part into `dir`; returns the files written, relative to it. */
export async function writeDataFiles(dir: string, s: Session): Promise<string[]> {
  const files: string[] = [];
  const put = async (name: string, bytes: string | Uint8Array) => {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), bytes);
    files.push(name);
  };
  let tokenizer: TokenizerRef = { kind: "byte" };
  if (s.spec.model!.builtin === undefined) {
    tokenizer = { kind: "tokenizer.json", folder: "tokenizer" };
    for (const f of TOKENIZER_FILES) {
      const from = join(s.profile.source, f);
      if (existsSync(from)) await put(`tokenizer/${f}`, await readFile(from));
    }
  }
  for (const [from, to] of bundledDataFiles(s.spec)) await put(to, await readFile(resolve(s.baseDir, from)));
  await put("data_config.json", `${JSON.stringify(dataConfig(s.spec, s.profile, tokenizer), null, 2)}\n`);
  await put("data_pipeline.py", readTemplate("data_pipeline.py"));
  return files;
}
