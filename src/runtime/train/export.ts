/** `export merged to DIR`: the trained adapter folded into the base weights, as a Hugging Face checkpoint. */
import { resolve } from "node:path";
import { mergeAdapter, withShapes, writeHfCheckpoint } from "../adapter/index.js";
import type { TrainBackend } from "./backend.js";
import type { Session } from "./session.js";

export async function exportMerged(s: Session, backend: TrainBackend, dir: string): Promise<string> {
  const base = new Map<string, Float32Array>();
  for (const p of s.trainGraph.params) if (p.origin === "base") base.set(p.name, s.params.get(p.name)!);
  const merged = mergeAdapter({ base, profile: s.profile, spec: s.spec, graph: s.trainGraph, values: await backend.values() });
  const out = resolve(s.baseDir, dir);
  await writeHfCheckpoint(out, withShapes(merged, s.profile), s.profile.config);
  return out;
}
