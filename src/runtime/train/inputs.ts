/**
 * A micro-batch as a graph's inputs: input_ids and labels [B, T], and positions 0.. for every
 * position the graph attends over (prompt methods prepend virtual tokens, so positions may be
 * longer than T: the graph's declared shape says by how much).
 */
import type { Graph } from "../../ir/index.js";
import { evalDim, type Tensor } from "../reference/exec/tensor.js";
import type { MicroBatch } from "./backend.js";

export function graphInputs(graph: Graph, m: MicroBatch): Record<string, Tensor> {
  const env = { B: m.B, T: m.T };
  const pos = graph.inputs.find((v) => v.name === "positions");
  const L = pos ? evalDim(pos.shape[1]!, env) : m.T;
  const positions = new Int32Array(m.B * L);
  for (let b = 0; b < m.B; b++) for (let t = 0; t < L; t++) positions[b * L + t] = t;
  return {
    input_ids: { data: m.inputIds, shape: [m.B, m.T] },
    labels: { data: m.labels, shape: [m.B, m.T] },
    positions: { data: positions, shape: [m.B, L] },
  };
}
