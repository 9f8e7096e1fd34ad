// Attention as kernels bound by the lowering contract's names (in<i>, out<i>, tmp0). The forward is
// one kernel. The backward is two, because the IR's forward keeps no log-sum-exp and because no
// kernel may scatter-add: statistics (lse and delta per query row, into tmp0) and dq in one pass
// owned by query rows, then dk/dv owned by sequence keys. With a prefix it is four: the prefix's
// two extra inputs would push the one-pass kernel to 9 storage buffers, past the 8 WebGPU
// guarantees per shader stage, so statistics and dq run apart, and dprefix_k/dprefix_v are
// owned by prefix keys.

import type { DeviceCaps } from "../../caps.js";
import type { KernelSpec } from "../../kernel.js";
import { keyRowKernel } from "./key-rows.js";
import { queryRowKernel } from "./query-rows.js";
import type { AttentionShape } from "./shape.js";

export * from "./shape.js";
export { queryRowKernel, queryRowGeometry, queryRowTuning, type QueryRowMode, type QueryRowNames, type QueryRowTuning } from "./query-rows.js";
export { keyRowKernel, keyRowGeometry, type KeyRowNames } from "./key-rows.js";

/** attention(q, k, v, prefix_k?, prefix_v?) → out. Bindings in0..in4, out0. */
export function attentionForwardKernel(s: AttentionShape, caps: DeviceCaps): KernelSpec {
  const names = s.P ? { q: "in0", k: "in1", v: "in2", pk: "in3", pv: "in4", out: "out0" } : { q: "in0", k: "in1", v: "in2", out: "out0" };
  return queryRowKernel(s, "forward", names, caps);
}

/**
 * attention_backward(q, k, v, out, dout, prefix_k?, prefix_v?) → dq, dk, dv, dprefix_k?, dprefix_v?.
 * Bindings in0..in6, out0..out4 and tmp0 of `scratchBytes[0]` (lse and delta of every query row).
 */
export function attentionBackwardKernels(s: AttentionShape, caps: DeviceCaps): { kernels: KernelSpec[]; scratchBytes: number[] } {
  const pre = s.P ? { pk: "in5", pv: "in6" } : {};
  const kernels = s.P
    ? [
        queryRowKernel(s, "stats", { q: "in0", k: "in1", ...pre, out: "in3", dout: "in4", stats: "tmp0" }, caps),
        queryRowKernel(s, "dq", { q: "in0", k: "in1", v: "in2", ...pre, dout: "in4", stats: "tmp0", dq: "out0" }, caps),
      ]
    : [queryRowKernel(s, "stats_dq", { q: "in0", k: "in1", v: "in2", out: "in3", dout: "in4", stats: "tmp0", dq: "out0" }, caps)];
  kernels.push(keyRowKernel(s, "seq", { q: "in0", dout: "in4", stats: "tmp0", k: "in1", v: "in2", dk: "out1", dv: "out2" }, caps));
  if (s.P) kernels.push(keyRowKernel(s, "prefix", { q: "in0", dout: "in4", stats: "tmp0", k: "in5", v: "in6", dk: "out3", dv: "out4" }, caps));
  return { kernels, scratchBytes: [2 * s.B * s.Hq * s.T * 4] };
}
