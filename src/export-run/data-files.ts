/**
 * The data part of a bundle, which runs on the Python standard library alone (plus the
 * sentencepiece package for a tokenizer.model): data_pipeline.py, data_config.json, the data files
 * (data/) and, for a model folder, the files its tokenizer is read from (tokenizer/). Built-in
 * models tokenize by byte and need none.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { sentencePieceConvention } from "../runtime/tokenizer/index.js";
import type { Session } from "../runtime/train/session.js";
import { bundledDataFiles, dataConfig, type TokenizerRef } from "./data-config.js";
import { readTemplate } from "./templates.js";

/** The files each kind of tokenizer is read from, as pefc reads them (tokenizer/hf.ts). */
const TOKENIZER_FILES = {
  "tokenizer.json": ["tokenizer.json", "tokenizer_config.json", "config.json"],
  sentencepiece: ["tokenizer.model", "tokenizer_config.json", "config.json"],
} as const;

/** Writes the data part into `dir`; returns the files written, relative to it. */
export async function writeDataFiles(dir: string, s: Session): Promise<string[]> {
  const files: string[] = [];
  const put = async (name: string, bytes: string | Uint8Array) => {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), bytes);
    files.push(name);
  };
  const tokenizer = s.spec.model!.builtin === undefined ? await folderTokenizer(s.profile.source) : ({ kind: "byte" } as const);
  if (tokenizer.kind !== "byte") {
    for (const f of TOKENIZER_FILES[tokenizer.kind]) {
      const from = join(s.profile.source, f);
      if (existsSync(from)) await put(`tokenizer/${f}`, await readFile(from));
    }
  }
  for (const [from, to] of bundledDataFiles(s.spec)) await put(to, await readFile(resolve(s.baseDir, from)));
  await put("data_config.json", `${JSON.stringify(dataConfig(s.spec, s.profile, tokenizer), null, 2)}\n`);
  await put("data_pipeline.py", readTemplate("data_pipeline.py"));
  return files;
}

/** Which tokenizer a model folder has, chosen as pefc chooses: tokenizer.json first, else tokenizer.model. */
async function folderTokenizer(folder: string): Promise<TokenizerRef> {
  if (existsSync(join(folder, "tokenizer.json")) || !existsSync(join(folder, "tokenizer.model"))) return { kind: "tokenizer.json", folder: "tokenizer" };
  const configPath = join(folder, "tokenizer_config.json");
  const convention = sentencePieceConvention(await readJson(configPath), await readJson(join(folder, "config.json")), configPath);
  return { kind: "sentencepiece", folder: "tokenizer", convention };
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  } catch {
    return {};
  }
}
