// One load measured in a process of its own (bench/load.ts runs it), so that peak RSS is this
// load's alone: every base weight of a ChatGLM2 folder read through openBaseWeights, the path
// `pefc run` takes to fill device buffers, into the precision given (f16 as under precision = f16,
// or f32), each tensor handed on and dropped as an upload does. Prints one JSON line.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildBaseGraph } from "../src/models/graph/index.js";
import { profileFromConfig } from "../src/models/profile.js";
import { openBaseWeights } from "../src/runtime/train/weights.js";

const [dir, precision] = process.argv.slice(2) as [string, "f16" | "f32"];
const profile = profileFromConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>, dir);
if (typeof profile === "string") throw new Error(profile);
const graph = buildBaseGraph(profile);
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
const base = await openBaseWeights({ source: dir, seed: 0, span: { line: 1, column: 1, endLine: 1, endColumn: 1, start: 0, end: 0 } }, profile, graph);
const tOpen = performance.now() - t0;
let values = 0;
let check = 0;
for (const name of base.names) {
  const data = precision === "f16" ? await base.readF16(name) : await base.readF32(name);
  values += data.length;
  check += data[data.length >> 1]!; // touch the data, as a copy to the device would
}
const ms = performance.now() - t0;
console.log(JSON.stringify({ precision, tensors: base.names.length, values, ms, openMs: tOpen, rssBefore, maxRss: process.resourceUsage().maxRSS * 1024, check }));
