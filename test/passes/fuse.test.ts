/**
 * The fuse pass changes how a training step is computed, never what: the fused and unfused graphs
 * of the same spec give the same loss, gradients and updated parameters on the reference executor
 * (float64), while the fused one has fewer ops.
 */
import { describe, expect, it } from "vitest";
import { checkSource } from "../../src/frontend.js";
import { verify } from "../../src/ir/index.js";
import { builtinConfig, initBuiltinWeights, profileFromConfig } from "../../src/models/index.js";
import { compileSpec } from "../../src/passes/compile.js";
import { fuseGraph } from "../../src/passes/fuse.js";
import { initTrainState, trainStep } from "../../src/runtime/reference/executor.js";
import { initParams } from "../../src/runtime/train/init-params.js";

function compile(src: string, fuse: boolean) {
  const c = compileSpec(checkSource(src, "f.peft").spec, { fuse });
  expect(c.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return c;
}

const cases = [
  ["tiny-llama", "lora r=4 alpha=8 on q_proj, o_proj, down_proj;\nunfreeze model.norm;"],
  // Plain gate and up projections with their activation: gate_up_silu_mul; down_proj's dX without a LoRA branch: linear_grad_silu_mul.
  ["tiny-llama", "lora r=4 alpha=8 on q_proj, v_proj;"],
  // LoRA branches on gate and up keep the projections apart: the plain down_proj reads its activation alone, silu_mul_linear.
  ["tiny-llama", "lora r=4 alpha=8 on gate_proj, up_proj;"],
  ["tiny-chatglm2", "lora r=4 alpha=8 on query_key_value, dense;"],
  ["tiny-gpt2", "lora r=4 alpha=16 on c_attn, c_proj;\nia3 on c_fc;"],
  // AdaLoRA's term, scaled by its run-time ranknum, is fused like LoRA's.
  ["tiny-chatglm2", "adalora r=4 alpha=8 on query_key_value, dense { init_r = 6; tinit = 0; tfinal = 0; delta_t = 1; }"],
] as const;

describe("fuse", () => {
  for (const [model, methods] of cases) {
    it(`${model}: fused and unfused steps agree, with fewer ops`, () => {
      const src = `model "builtin:${model}";\n${methods}\ntrain { steps = 1; optimizer = adamw; lr = 0.01; clip = 1.0; }\n`;
      const plain = compile(src, false);
      const fused = compile(src, true);
      expect(verify(fused.graph!)).toEqual([]);
      const { stats } = fuseGraph(plain.graph!);
      expect(stats.lora).toBeGreaterThan(0);
      expect(stats.residual).toBeGreaterThan(0);
      // AdaLoRA's backward scales by rank_scale, a run-time value no gradient's alpha can take.
      expect(stats.scales > 0).toBe(!methods.startsWith("adalora"));
      // llama's MLP is SwiGLU on separate gate and up projections (one per layer); the others have none.
      expect(stats.swiglu).toBe(model === "tiny-llama" ? plain.profile!.dims.numLayers : 0);
      // Plain gate and up projections of one input compute the activation with them: gate_up_silu_mul.
      const layers = plain.profile!.dims.numLayers;
      const plainGateUp = model === "tiny-llama" && !/gate_proj|up_proj/.test(methods);
      expect(stats.gateUp).toBe(plainGateUp ? layers : 0);
      // Otherwise a plain down projection reads the activation as it goes (silu_mul_linear). Its dX
      // (one plain product) takes SwiGLU's backward in the epilogue either way: linear_grad_silu_mul.
      const plainDown = model === "tiny-llama" && !methods.includes("down_proj");
      expect(stats.siluMulLinear).toBe(plainDown && !plainGateUp ? layers : 0);
      expect(stats.gradSiluMul).toBe(plainDown ? layers : 0);
      expect(fused.graph!.ops.filter((op) => op.op === "gate_up_silu_mul")).toHaveLength(stats.gateUp);
      // The base projection and its LoRA A (or AdaLoRA's) read the same input: their dX share one sum.
      expect(stats.gradSums).toBeGreaterThan(0);
      // Pre-norm blocks: each norm's dx joins the residual stream's gradient as it is stored.
      expect(stats.normAdds).toBeGreaterThanOrEqual(plain.profile!.dims.numLayers);
      expect(fused.graph!.ops.some((op) => op.op === "linear_grad_input_sum")).toBe(true);
      // The loss and its backward in one op, also under AdaLoRA's regularised loss (its seed moves up).
      expect(stats.lossGrad).toBe(1);
      expect(fused.graph!.ops.filter((op) => op.op.startsWith("cross_entropy")).map((op) => op.op)).toEqual(["cross_entropy_grad"]);
      expect(fused.graph!.ops.length).toBeLessThan(plain.graph!.ops.length - stats.lora);

      const profile = profileFromConfig(builtinConfig(model)!, `builtin:${model}`);
      if (typeof profile === "string") throw new Error(profile);
      const weights = initBuiltinWeights(profile, 3) as Map<string, Float32Array>;
      for (const [k, v] of initParams(plain.graph!, weights, 5)) weights.set(k, v);
      // LoRA's B and AdaLoRA's E start at zero; give them values so the fused term is exercised.
      for (const [k, v] of weights) if (/lora_B\.weight$|lora_E$/.test(k)) v.forEach((_, i) => (v[i] = Math.sin(i + 1) * 0.05));
      const B = 2;
      const T = 6;
      const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 53) % 250));
      const batch = { input_ids: { data: ids, shape: [B, T] }, labels: { data: ids, shape: [B, T] }, positions: { data: Int32Array.from({ length: B * T }, (_, i) => i % T), shape: [B, T] } };
      const run = (g: typeof plain.graph) => {
        const st = initTrainState(g!, weights, "f64");
        const r = trainStep(g!, st, [batch], { lr: 0.01, dtype: "f64" });
        return { r, st };
      };
      const a = run(plain.graph);
      const b = run(fused.graph);
      expect(Math.abs(a.r.loss - b.r.loss)).toBeLessThan(1e-12);
      for (const [k, g] of a.r.grads) {
        const h = b.r.grads.get(k)!;
        let worst = 0;
        for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i]! - h[i]!));
        expect(worst, k).toBeLessThan(1e-12);
      }
      for (const [k, p] of a.st.params) {
        const q = b.st.params.get(k)!;
        for (let i = 0; i < p.length; i++) expect(Math.abs(p[i]! - q[i]!)).toBeLessThan(1e-12);
      }
    });
  }
});
