/**
 * JSON Schemas of every option block: the single source of which keys exist, their types, ranges
 * and defaults. `x-unit` says what unit a number may carry (tokens, steps, epochs, percent, or a
 * period of steps or epochs); `x-exclusive` lists pairs of keys that say one thing two ways;
 * `x-values` marks string keys whose value is a fixed word (written bare: `optimizer = adamw`).
 * docs/language.md is written from these tables.
 */

export type Schema = {
  type: "object";
  description: string;
  properties: Record<string, Record<string, unknown>>;
  additionalProperties: false;
  "x-exclusive"?: [string, string][];
};

const int = (description: string, minimum: number, dflt?: number, unit?: string) => ({
  type: "integer", minimum, description, ...(dflt !== undefined ? { default: dflt } : {}), ...(unit ? { "x-unit": unit } : {}),
});
const num = (description: string, range: Record<string, number>, dflt?: number, unit?: string) => ({
  type: "number", ...range, description, ...(dflt !== undefined ? { default: dflt } : {}), ...(unit ? { "x-unit": unit } : {}),
});
const word = (description: string, values: string[], dflt?: string) => ({
  type: "string", enum: values, description, ...(dflt !== undefined ? { default: dflt } : {}),
});
const bool = (description: string, dflt: boolean) => ({ type: "boolean", description, default: dflt });
const text = (description: string) => ({ type: "string", minLength: 1, description });
const probability = (description: string) => num(description, { minimum: 0, exclusiveMaximum: 1 }, 0);

function block(description: string, properties: Schema["properties"], exclusive?: [string, string][]): Schema {
  return { type: "object", description, properties, additionalProperties: false, ...(exclusive ? { "x-exclusive": exclusive } : {}) };
}

export const MODEL = block("Options of the model statement.", {
  seed: int("Seed of the random weights of a builtin: model (ignored for checkpoints).", 0, 0),
});

export const DATA = block(
  "Options of a data statement: where records come from and how they become tokens.",
  {
    format: word("File format; by default from the extension (.jsonl, .json, .csv).", ["jsonl", "json", "csv"]),
    prompt: text("Field holding the prompt (question, instruction). Without it, records must be pre-tokenized (input_ids, optional labels)."),
    response: text("Field holding the response (answer) the model learns to produce."),
    system: text("Field holding a system prompt, if any."),
    history: text("Field holding earlier turns: a list of [prompt, response] pairs."),
    template: { type: "string", minLength: 1, description: "Chat template: a name (chatglm2, llama2, alpaca, plain, model) or a string with {system}, {prompt}, {response}.", default: "model" },
    max_source: int("Prompt budget in tokens; longer prompts are truncated.", 1, undefined, "tokens"),
    max_target: int("Response budget in tokens; longer responses are truncated.", 1, undefined, "tokens"),
    max_length: int("Budget for prompt and response together, in tokens.", 1, undefined, "tokens"),
    truncation: word("Which end of a too-long prompt is cut.", ["left", "right"], "right"),
    loss: word("Which tokens count in the loss: the response only, or every token.", ["response", "all"], "response"),
    shuffle: { type: "boolean", description: "Shuffle records every epoch (train data defaults to true, eval to false)." },
    seed: int("Seed of the shuffle.", 0, 42),
    split: num("Eval only: hold out this share (with %) or count of the train records instead of reading a file.", { exclusiveMinimum: 0 }, undefined, "percent_or_count"),
    on_error: word("What a bad record does: stop with an error naming it, or skip it and count it.", ["fail", "skip"], "fail"),
  },
  [["max_length", "max_source"], ["max_length", "max_target"]],
);

const loraCore = {
  r: int("Rank of the update.", 1, 8),
  alpha: num("Numerator of the scale alpha/r (alpha/sqrt(r) with rslora).", { exclusiveMinimum: 0 }, 8),
  dropout: probability("Dropout on the adapter's input path."),
};

export const LORA = block("LoRA: y = W x + (alpha/r) B A dropout(x), with A [r, in] and B [out, r].", {
  ...loraCore,
  rslora: bool("Scale by alpha/sqrt(r) instead of alpha/r.", false),
  init: word("Initialisation of A (B starts at zero): kaiming-uniform or gaussian (std 1/r).", ["kaiming", "gaussian"], "kaiming"),
  bias: word("Which existing biases train too: none, all, or those of adapted modules.", ["none", "all", "lora_only"], "none"),
});

export const LORA_OVERRIDE = block("Settings an override block may change for the modules it selects.", loraCore);

export const ADALORA = block("AdaLoRA: SVD-shaped updates B E A whose ranks are pruned toward an average of r during training.", {
  r: int("Target average rank the budget is pruned toward (PEFT's target_r).", 1, 8),
  alpha: num("Numerator of the scale alpha/init_r.", { exclusiveMinimum: 0 }, 8),
  dropout: probability("Dropout on the adapter's input path."),
  init_r: int("Rank each update starts with.", 1, 12),
  tinit: int("Steps of warm-up before any pruning.", 0, 0, "steps"),
  tfinal: int("Final steps with the rank pattern fixed.", 0, 0, "steps"),
  delta_t: int("Steps between two budget allocations.", 1, 1, "steps"),
  beta1: probability("EMA coefficient of the sensitivity."),
  beta2: probability("EMA coefficient of the uncertainty."),
  orth_reg_weight: num("Weight of the orthogonality regulariser.", { minimum: 0 }, 0.5),
  total_step: int("Total optimizer steps of the schedule; by default derived from the train block and the data.", 1, undefined, "steps"),
});
(ADALORA.properties.beta1 as { default: number }).default = 0.85;
(ADALORA.properties.beta2 as { default: number }).default = 0.85;

export const IA3 = block("IA3: learned vectors that rescale activations; output side, or input side for feed-forward modules.", {
  feedforward: { description: "Modules scaled on the input side; by default the model's feed-forward down-projections among the targets.", anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, minItems: 1 }] },
});

export const BITFIT = block("BitFit: train only existing bias terms.", {});

const adapterCore = (act: string, reduction: number, scaling: number, init: string) => ({
  reduction: num("Bottleneck width is hidden_size / reduction.", { exclusiveMinimum: 0 }, reduction),
  bottleneck: int("Bottleneck width, instead of a reduction factor.", 1),
  act: word("Activation inside the bottleneck.", ["relu", "swish", "gelu", "tanh"], act),
  dropout: probability("Dropout on the adapter output."),
  scaling: num("Factor on the adapter output.", { exclusiveMinimum: 0 }, scaling),
  init: word("Initialisation: bert (N(0, 0.02)), mam (kaiming down, zero up), houlsby (truncated normal 0.01).", ["bert", "mam", "houlsby"], init),
});

export const ADAPTER: Record<"houlsby" | "pfeiffer" | "parallel", Schema> = {
  houlsby: block("Houlsby bottleneck adapters after attention and after the feed-forward block.", adapterCore("swish", 16, 1, "bert"), [["reduction", "bottleneck"]]),
  pfeiffer: block("Pfeiffer bottleneck adapter after the feed-forward block.", adapterCore("relu", 16, 1, "bert"), [["reduction", "bottleneck"]]),
  parallel: block("Parallel adapter beside the feed-forward block (He et al.).", adapterCore("relu", 2, 4, "mam"), [["reduction", "bottleneck"]]),
};

export const PREFIX = block("Prefix tuning: trained key/value prefixes in every attention layer, through a reparameterisation MLP.", {
  tokens: int("Number of prefix positions.", 1, 30),
  projection: bool("Produce the prefixes through the MLP (true) or train them directly (false).", true),
  hidden: int("Hidden width of the MLP.", 1, 512),
});

export const P_TUNING_V2 = block("P-tuning v2: deep prompts, trained key/value prefixes in every layer.", {
  tokens: int("Number of prefix positions (ChatGLM's pre_seq_len).", 1, 128),
  projection: bool("Produce the prefixes through an MLP.", false),
  hidden: int("Hidden width of the MLP, when projection is on.", 1, 512),
});

export const P_TUNING = block("P-tuning: virtual input tokens produced by a prompt encoder.", {
  tokens: int("Number of virtual tokens.", 1, 20),
  encoder: word("Prompt encoder.", ["mlp", "lstm"], "mlp"),
  hidden: int("Hidden width of the encoder; by default the model's hidden size.", 1),
  encoder_layers: int("LSTM layers.", 1, 2),
  encoder_dropout: probability("LSTM dropout."),
});

export const PROMPT_TUNING = block("Prompt tuning: trained embeddings of virtual tokens prepended to the input.", {
  tokens: int("Number of virtual tokens.", 1, 20),
  init: { type: "string", minLength: 1, description: "random (N(0,1)), vocab (embeddings of random tokens), or a quoted text whose token embeddings start the prompt.", default: "random" },
});

export const HYBRID = block("Options of mam, unipelt and combine.", {
  gate: { type: "boolean", description: "Put a learned gate on each member (UniPELT). unipelt defaults to true, others to false." },
});

export const TRAIN = block(
  "The training loop.",
  {
    epochs: int("Passes over the train data.", 1, undefined, "epochs"),
    steps: int("Optimizer steps, instead of epochs.", 1, undefined, "steps"),
    batch: int("Records per micro-batch.", 1, 1),
    grad_accum: int("Micro-batches per optimizer step.", 1, 1),
    lr: num("Peak learning rate.", { exclusiveMinimum: 0 }, 1e-4),
    optimizer: word("Optimizer.", ["adamw", "adam", "sgd"], "adamw"),
    betas: { type: "array", items: { type: "number", minimum: 0, exclusiveMaximum: 1 }, minItems: 2, maxItems: 2, description: "Adam's (beta1, beta2).", default: [0.9, 0.999] },
    eps: num("Adam's epsilon.", { exclusiveMinimum: 0 }, 1e-8),
    weight_decay: num("Weight decay (decoupled for adamw, L2 for adam and sgd).", { minimum: 0 }, 0),
    momentum: num("SGD momentum.", { minimum: 0, exclusiveMaximum: 1 }, 0),
    nesterov: bool("SGD Nesterov momentum.", false),
    schedule: word("Learning-rate schedule after warm-up.", ["constant", "linear", "cosine"], "linear"),
    warmup: num("Warm-up: a number of steps, or a share of all steps with %.", { minimum: 0 }, 0, "steps_or_percent"),
    clip: num("Clip the global gradient norm to this value; 0 turns clipping off.", { minimum: 0 }, 1),
    precision: word("f16 stores frozen weights in half precision; trainable state stays f32.", ["f32", "f16"], "f32"),
    seed: int("Seed of initialisation, dropout and shuffling.", 0, 42),
    log_every: int("Steps (or epochs, with the unit) between log lines.", 1, 10, "period"),
    eval_every: int("Steps or epochs between evaluations (default: every epoch).", 1, undefined, "period"),
  },
  [["epochs", "steps"]],
);

/** Keys that only make sense for some optimizers. */
export const OPTIMIZER_KEYS: Record<string, string[]> = {
  betas: ["adamw", "adam"],
  eps: ["adamw", "adam"],
  momentum: ["sgd"],
  nesterov: ["sgd"],
};

/**
 * The names Hugging Face PEFT, Transformers, LLaMA-Factory and the ChatGLM scripts use for our
 * keys, so `did you mean` can answer a user who writes the name they already know.
 */
export const KEY_ALIASES: Record<string, string> = {
  rank: "r", target_r: "r", lora_alpha: "alpha", lora_dropout: "dropout", use_rslora: "rslora",
  init_lora_weights: "init", deltaT: "delta_t", deltat: "delta_t", feedforward_modules: "feedforward",
  num_virtual_tokens: "tokens", pre_seq_len: "tokens", prefix_projection: "projection",
  encoder_hidden_size: "hidden", encoder_reparameterization_type: "encoder", encoder_num_layers: "encoder_layers",
  prompt_tuning_init: "init", prompt_tuning_init_text: "init", reduction_factor: "reduction", non_linearity: "act",
  learning_rate: "lr", num_train_epochs: "epochs", num_epochs: "epochs", max_steps: "steps", batch_size: "batch",
  per_device_train_batch_size: "batch", micro_batch_size: "batch", gradient_accumulation_steps: "grad_accum",
  max_grad_norm: "clip", clip_grad_norm: "clip", lr_scheduler_type: "schedule", warmup_steps: "warmup",
  warmup_ratio: "warmup", fp16: "precision", bf16: "precision", optim: "optimizer", logging_steps: "log_every",
  eval_steps: "eval_every", adam_beta1: "betas", adam_beta2: "betas", adam_epsilon: "eps",
  max_source_length: "max_source", max_target_length: "max_target", cutoff_len: "max_length", max_seq_length: "max_length",
  prompt_column: "prompt", response_column: "response", history_column: "history", query: "prompt", instruction: "prompt",
  output: "response", answer: "response",
};
