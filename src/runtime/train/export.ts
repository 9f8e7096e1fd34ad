/** `export merged to DIR`: the trained adapter folded into the base weights, as a Hugging Face checkpoint. */
import { resolve } from "node:path";
import { mergeAdapter, withShapes, writeHfCheckpoint } from "../adapter/index.js";
import type { TrainBackend } from "./backend.js";
import type { Session } from "./session.js";

export async function exportMerged(s: Session, backend: TrainBackend, dir: string): Promise<string> {
  const base = await s.base.loadAll();
  const merged = mergeAdapter({ base, profile: s.profile, spec: s.spec, graph: s.trainGraph, values: await backend.values() });
  const out = resolve(s.baseDir, dir);
  await writeHfCheckpoint(out, withShapes(merged, s.profile), s.profile.config);
  return out;
}
