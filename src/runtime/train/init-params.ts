/**
 * Starting values of the parameters methods add, from each parameter's init description and the
 * run's seed. Every tensor draws from its own counter-based stream (seed, FNV-1a of its name), so a
 * value does not depend on which other parameters exist or in which order they are made.
 */
import type { Graph, ParamInit } from "../../ir/index.js";
import { streamKey, uniformAt } from "../reference/rng.js";

export function streamOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function fill(out: Float32Array, init: ParamInit, key: number, lookup: (name: string) => Float32Array | undefined): void {
  switch (init.kind) {
    case "zeros": out.fill(0); return;
    case "ones": out.fill(1); return;
    case "constant": out.fill(init.value); return;
    case "uniform":
      for (let i = 0; i < out.length; i++) out[i] = init.low + (init.high - init.low) * uniformAt(key, i);
      return;
    case "normal":
      // Box-Muller over consecutive counter pairs; u1 is kept away from 0.
      for (let i = 0; i < out.length; i += 2) {
        const u1 = Math.max(uniformAt(key, i), 2 ** -25);
        const u2 = uniformAt(key, i + 1);
        const r = Math.sqrt(-2 * Math.log(u1));
        out[i] = init.mean + init.std * r * Math.cos(2 * Math.PI * u2);
        if (i + 1 < out.length) out[i + 1] = init.mean + init.std * r * Math.sin(2 * Math.PI * u2);
      }
      return;
    case "rows": {
      const src = lookup(init.from);
      if (!src) throw new Error(`init rows: no values for ${init.from}`);
      const width = out.length / init.rows.length;
      init.rows.forEach((row, i) => out.set(src.subarray(row * width, (row + 1) * width), i * width));
      return;
    }
  }
}

/** Values for every parameter of `graph` that has an init and no value in `have`. */
export function initParams(graph: Graph, have: ReadonlyMap<string, Float32Array>, seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const lookup = (n: string) => out.get(n) ?? have.get(n);
  for (const p of graph.params) {
    if (have.has(p.name) || !p.init) continue;
    const v = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    fill(v, p.init, streamKey(seed, streamOf(p.name)), lookup);
    out.set(p.name, v);
  }
  return out;
}
