/**
 * The `model` statement's source → a profile: `builtin:NAME`, or a checkpoint folder (relative to the
 * .peft file's folder) holding config.json. Only config.json is read; every problem with it is a
 * diagnostic at the source's span.
 */
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { diag, didYouMean, q, type Diagnostic } from "../diagnostics/index.js";
import type { Span } from "../parser/ast.js";
import { builtinConfig, builtinNames } from "./builtin.js";
import { knownModelTypes, profileFromConfig } from "./profile.js";
import type { ModelProfile } from "./types.js";

export interface LoadContext {
  /** Folder that relative sources are resolved against (the .peft file's folder). */
  baseDir: string;
  /** The .peft file, for diagnostics. */
  file: string;
  span?: Span;
}

export interface LoadResult {
  profile?: ModelProfile;
  diagnostics: Diagnostic[];
}

const BUILTIN = "builtin:";

export function loadProfile(source: string, ctx: LoadContext): LoadResult {
  if (source.startsWith(BUILTIN)) return loadBuiltin(source, source.slice(BUILTIN.length), ctx);
  const dir = resolve(ctx.baseDir, source);
  const configPath = join(dir, "config.json");
  const fail = (reason: string): LoadResult => ({ diagnostics: [diag("P408", ctx.file, ctx.span, [q(source), reason])] });

  const kind = statKind(dir);
  if (kind === "missing") return fail(`no such folder ${dir}`);
  if (kind === "file") return fail(`${dir} is a file; name the folder that holds config.json`);
  let text: string;
  try {
    text = readFileSync(configPath, "utf8");
  } catch (e) {
    return fail(statKind(configPath) === "missing" ? `${configPath} does not exist` : `${configPath}: ${errorText(e)}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (e) {
    return fail(`${configPath} is not valid JSON: ${errorText(e)}`);
  }
  return fromConfig(config, dir, configPath, source, ctx);
}

function loadBuiltin(source: string, name: string, ctx: LoadContext): LoadResult {
  const config = builtinConfig(name);
  if (config === undefined) {
    const names = builtinNames();
    const guess = didYouMean(name, names);
    const reason = `there is no built-in model ${q(name)}; the built-ins are ${names.join(", ")}`;
    const help = guess === undefined ? undefined : `did you mean builtin:${guess}?`;
    return { diagnostics: [diag("P408", ctx.file, ctx.span, [q(source), reason], help)] };
  }
  return fromConfig(config, source, source, source, ctx);
}

function fromConfig(config: unknown, where: string, configName: string, source: string, ctx: LoadContext): LoadResult {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    return { diagnostics: [diag("P408", ctx.file, ctx.span, [q(source), `${configName} does not hold a JSON object`])] };
  }
  const cfg = config as Record<string, unknown>;
  const modelType = cfg["model_type"];
  const known = knownModelTypes();
  if (typeof modelType !== "string" || !known.includes(modelType)) {
    const shown = typeof modelType === "string" ? q(modelType) : "(no model_type)";
    return { diagnostics: [diag("P409", ctx.file, ctx.span, [shown, configName, known.join(", ")])] };
  }
  const profile = profileFromConfig(cfg, where);
  if (typeof profile === "string") {
    return { diagnostics: [diag("P408", ctx.file, ctx.span, [q(source), `${configName}: ${profile}`])] };
  }
  return { profile, diagnostics: [] };
}

function statKind(path: string): "missing" | "file" | "dir" {
  try {
    return statSync(path).isDirectory() ? "dir" : "file";
  } catch {
    return "missing";
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
