/**
 * A GpuBackend for a prepared session: the program sized for the run (B = micro-batch rows, T =
 * the longest example of the training and evaluation data), the device's preferred matmul
 * variant, f16 frozen weights when the spec asks for precision f16 (a device without shader-f16
 * is refused with P802).
 */
import { diag } from "../../diagnostics/index.js";
import { chooseMatmulVariant, openDevice, type Device } from "../device/index.js";
import { adaloraAllocation } from "../train/adalora.js";
import { DiagnosticsError, type Session } from "../train/session.js";
import { GpuBackend, type GpuBackendOptions } from "./backend.js";

export function longestExample(s: Session): number {
  let T = 1;
  for (const e of [...s.train, ...(s.eval ?? [])]) T = Math.max(T, e.inputIds.length);
  return T;
}

/** `options` overrides what the session implies (the bench's unfused baseline plans updates per op). */
export async function openGpuBackend(s: Session, device?: Device, options: Pick<GpuBackendOptions, "fusedUpdate" | "compiling"> = {}): Promise<GpuBackend> {
  const dev = device ?? (await openDevice());
  const f16 = s.spec.train.precision === "f16";
  if (f16 && !dev.caps.f16) throw new DiagnosticsError([diag("P802", s.spec.file, s.spec.train.span, [dev.info.adapter.description || "this device"])]);
  const { variant } = await chooseMatmulVariant(dev);
  const adalora = adaloraAllocation(s);
  return GpuBackend.create(dev, {
    trainGraph: s.trainGraph,
    evalGraph: s.evalGraph,
    params: s.params,
    base: s.base,
    seed: s.spec.train.seed,
    B: s.spec.train.batch,
    T: longestExample(s),
    matmul: variant,
    f16Weights: f16,
    ...(adalora ? { adalora } : {}),
    padId: s.tokenizer?.padId ?? 0,
    ...options,
  });
}
