// Mesa's shader cache (llvmpipe's compiled kernels) kept in pefc's cache folder, so a second run
// starts in seconds and other programs' shaders do not evict pefc's from Mesa's shared default
// folder. It has to be set before Dawn loads the Vulkan driver, which reads it once; a folder or a
// switch-off the user chose wins.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { pefcCacheDir } from "./kernel-cache.js";

const TRUE = new Set(["1", "true", "yes", "y", "on"]);

/** Whether Mesa keeps compiled shaders on disk (it does unless switched off). */
export function mesaDiskCacheEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const off = env["MESA_SHADER_CACHE_DISABLE"] ?? env["MESA_GLSL_CACHE_DISABLE"];
  return off === undefined || !TRUE.has(off.trim().toLowerCase());
}

/**
 * Points MESA_SHADER_CACHE_DIR at <pefc cache>/mesa unless the user set it or switched the cache
 * off; returns the folder used, or undefined when left to the user's setting (or when the folder
 * cannot be made: Mesa then uses its own default).
 */
export function keepMesaCacheWithPefc(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env["MESA_SHADER_CACHE_DIR"] || !mesaDiskCacheEnabled(env)) return undefined;
  const dir = join(pefcCacheDir(env), "mesa");
  try {
    mkdirSync(dir, { recursive: true });
  } catch {
    return undefined;
  }
  env["MESA_SHADER_CACHE_DIR"] = dir;
  return dir;
}
