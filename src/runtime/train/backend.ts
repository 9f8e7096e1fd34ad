/**
 * What the training loop needs from a device: one optimizer step over a group of micro-batches,
 * the loss of a batch without training, and the current values of the trained tensors. The CPU
 * reference and the WebGPU runtime both implement it, so the loop, checkpoints and logs are one
 * piece of code whatever runs the math.
 */

/** One padded micro-batch, row-major [B, T]. */
export interface MicroBatch {
  inputIds: Int32Array;
  labels: Int32Array;
  B: number;
  T: number;
  /** Non-padding tokens, for tokens/s. */
  tokens: number;
  /** Tokens the loss counts (labels not -100 after the shift). */
  lossTokens: number;
}

export interface StepOutcome {
  /** Mean micro-batch loss of the step. */
  loss: number;
  /** Global gradient norm before clipping, when the run clips. */
  gradNorm?: number;
}

export interface TrainBackend {
  /** `reference` or the adapter's description. */
  readonly device: string;
  /** One optimizer step: forward and backward of each micro-batch, then the update at `lr`. */
  step(micro: readonly MicroBatch[], lr: number): Promise<StepOutcome>;
  /** Mean loss over the counted tokens of one batch, without changing anything. */
  evalLoss(batch: MicroBatch): Promise<number>;
  /** Current values of every parameter a method added or unfroze (what an adapter saves). */
  values(): Promise<Map<string, Float32Array>>;
  /**
   * AdaLoRA's keep-masks after the last masking, when the run has AdaLoRA and has masked; a
   * device backend reads them back only when asked (at save time).
   */
  rankPattern(): Promise<Record<string, boolean[]> | undefined>;
  /** Everything the next step depends on, for a checkpoint that resumes bit-identically. */
  snapshot(): Promise<TrainSnapshot>;
  restore(s: TrainSnapshot): Promise<void>;
  dispose(): void;
}

/** The state of training after a step: parameters that change, optimizer state, AdaLoRA's EMAs. */
export interface TrainSnapshot {
  /** Optimizer steps taken. */
  step: number;
  /** Every parameter that is not frozen base weight. */
  params: Map<string, Float32Array>;
  /** Optimizer state by graph input name (`optim.m.<p>`...). */
  optim: Map<string, Float32Array>;
  allocator?: { tensors: Map<string, Float32Array>; rankPattern?: Record<string, boolean[]> };
}
