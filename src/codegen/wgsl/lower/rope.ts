/**
 * Lowerings of the rope family (see types.ts for the contract). One thread per position and
 * channel pair of x [B,T,H,hd] (pairs (i, i + rd/2) in "half" mode, neighbours in "interleaved"
 * mode), turning that pair in every head by pos·θ^(−2i/rd); channels past rotary_dim are copied
 * by threads of their own. Backward turns by the negated angle. Positions are i32 [B,T] (or [T], shared by the batch, as the
 * reference also accepts). The angles come from kernels/turns.ts, accurate at long positions.
 */
import { input, load, mapKernel, output, store } from "../kernels/common.js";
import { sinCosTable } from "../kernels/turns.js";
import { registerLowerings } from "./registry.js";
import type { Lowering, TensorArg } from "./types.js";

const rope =
  (sign: 1 | -1): Lowering =>
  (ctx) => {
    const [x, pos] = ctx.inputs as [TensorArg, TensorArg];
    const out = ctx.outputs[0]!;
    const [B, T, H, hd] = x.shape as [number, number, number, number];
    const mode = ctx.attrs["mode"];
    const rd = ctx.attrs["rotary_dim"];
    const theta = ctx.attrs["theta"];
    if ((mode !== "half" && mode !== "interleaved") || typeof rd !== "number" || typeof theta !== "number")
      throw new Error(`${ctx.op.op}: needs mode, rotary_dim and theta`);
    const half = rd / 2;
    const omegas = Array.from({ length: half }, (_, i) => Math.pow(theta, (-2 * i) / rd));
    const perBatch = pos.shape.reduce((a, b) => a * b, 1) === B * T;
    // One thread per (position, rotated pair k or pass-through channel): the angle is worked out
    // once and turns the pair in every head (H angles fewer than a thread per element).
    const slots = half + (hd - rd);
    const n = B * T * slots;
    const [c1, c2] = mode === "half" ? ["k", "k + HALF"] : ["2u * k", "2u * k + 1u"];
    const X = (idx: string) => load("in0", x.dtype, idx);
    const body = `let bt = i / SLOTS;
let k = i % SLOTS;
let row = bt * H * HD;
if (k >= HALF) {
  let c = RD + (k - HALF);
  for (var h = 0u; h < H; h++) { ${store("out0", out.dtype, "row + h * HD + c", X("row + h * HD + c"))} }
  return;
}
let p = f32(in1[${perBatch ? "bt" : "bt % T"}]);
let sc = angle(p, k);
let sn = ${sign === 1 ? "sc.x" : "-sc.x"};
for (var h = 0u; h < H; h++) {
  let i1 = row + h * HD + ${c1};
  let i2 = row + h * HD + ${c2};
  let x1 = ${X("i1")};
  let x2 = ${X("i2")};
  ${store("out0", out.dtype, "i1", "x1 * sc.y - x2 * sn")}
  ${store("out0", out.dtype, "i2", "x2 * sc.y + x1 * sn")}
}`;
    return {
      kernels: [
        mapKernel({
          label: `rope${sign === 1 ? "" : "_bwd"}_${mode}_${B}x${T}x${H}x${hd}_rd${rd}`,
          caps: ctx.caps,
          n,
          bindings: [input(0, x.dtype), input(1, "i32"), output(0, out.dtype)],
          consts: { T, H, HD: hd, RD: rd, HALF: half, SLOTS: slots },
          helpers: sinCosTable("angle", omegas),
          body,
          flops: 30 * B * T * half + 6 * B * T * H * half,
        }),
      ],
    };
  };

registerLowerings({ rope: rope(1), rope_backward: rope(-1) });
