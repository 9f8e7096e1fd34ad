/**
 * Lowerings of the rope family (see types.ts for the contract). One thread per element of x
 * [B,T,H,hd]: channels past rotary_dim are copied, the others read their pair partner (i + rd/2
 * in "half" mode, the neighbour in "interleaved" mode) and turn by pos·θ^(−2i/rd); backward
 * turns by the negated angle. Positions are i32 [B,T] (or [T], shared by the batch, as the
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
    const n = B * T * H * hd;
    const pair =
      mode === "half"
        ? "let k = c % HALF;\nlet first = c < HALF;\nlet partner = select(i - HALF, i + HALF, first);"
        : "let k = c / 2u;\nlet first = (c % 2u) == 0u;\nlet partner = select(i - 1u, i + 1u, first);";
    const X = (idx: string) => load("in0", x.dtype, idx);
    const body = `let c = i % HD;
if (c >= RD) { ${store("out0", out.dtype, "i", X("i"))} return; }
let bt = i / (H * HD);
let p = f32(in1[${perBatch ? "bt" : "bt % T"}]);
${pair}
let sc = angle(p, k);
let sn = ${sign === 1 ? "sc.x" : "-sc.x"};
let xv = ${X("i")};
let xp = ${X("partner")};
${store("out0", out.dtype, "i", "select(xv * sc.y + xp * sn, xv * sc.y - xp * sn, first)")}`;
    return {
      kernels: [
        mapKernel({
          label: `rope${sign === 1 ? "" : "_bwd"}_${mode}_${B}x${T}x${H}x${hd}_rd${rd}`,
          caps: ctx.caps,
          n,
          bindings: [input(0, x.dtype), input(1, "i32"), output(0, out.dtype)],
          consts: { T, H, HD: hd, RD: rd, HALF: half },
          helpers: sinCosTable("angle", omegas),
          body,
          flops: 30 * n,
        }),
      ],
    };
  };

registerLowerings({ rope: rope(1), rope_backward: rope(-1) });
