/**
 * Every message pefc can report about user input, by code. Messages use `{0}`, `{1}`... for
 * arguments. `pefc explain CODE` prints `explain`. Codes are stable: never reuse a retired one.
 *
 * P1xx reading the file, P2xx grammar, P3xx keys and values, P4xx selectors against the model,
 * P5xx method conflicts, P6xx data, P7xx training schedule, P8xx device, P9xx output.
 */
export type Severity = "error" | "warning" | "info";

export interface DiagnosticInfo {
  severity: Severity;
  message: string;
  explain: string;
}

export const DIAGNOSTICS = {
  P101: {
    severity: "error",
    message: "unexpected character {0}",
    explain: "The character cannot start any token of the .peft language. Comments start with '#'; strings use double quotes.",
  },
  P102: {
    severity: "error",
    message: "the file is not valid UTF-8 (byte {0})",
    explain: "Save the file as UTF-8. The position points at the first byte that is not part of a valid UTF-8 sequence.",
  },
  P103: {
    severity: "error",
    message: "unterminated or malformed string {0}",
    explain: "Strings are double-quoted, stay on one line and use JSON escapes: \\n \\t \\\" \\\\ \\uXXXX.",
  },
  P104: {
    severity: "error",
    message: "cannot read {0}: {1}",
    explain: "The file named on the command line could not be read. Check the path and permissions.",
  },
  P201: {
    severity: "error",
    message: "expected {0}, found {1}",
    explain: "The statement does not follow the grammar (grammar/peft.ebnf). The checker resumes at the next ';' or '}' and keeps reporting.",
  },
  P203: {
    severity: "error",
    message: "unknown statement {0}{1}",
    explain: "Statements start with a keyword: peft, model, select, data, freeze, unfreeze, a method (lora, adalora, ia3, bitfit, adapter, prefix, p_tuning, p_tuning_v2, prompt_tuning), a hybrid (mam, unipelt, combine), init, train, save or export.",
  },
  P204: {
    severity: "error",
    message: "{0} is given twice; the first is at line {1}",
    explain: "A run has one model, one train block, one train data set and one eval data set. Remove the duplicate.",
  },
  P205: {
    severity: "error",
    message: "missing {0}",
    explain: "The file lacks a statement every run needs, such as the model statement.",
  },
  P206: {
    severity: "error",
    message: "unsupported language version {0}; this pefc reads version {1}",
    explain: "The optional header `peft VERSION;` names the language version the file was written for.",
  },
  P207: {
    severity: "error",
    message: "brackets nest more than {0} levels deep here",
    explain: "A .peft file nests a few levels of braces and brackets; one nesting dozens is damaged. pefc reads the file up to this bracket. Look for a run of repeated '{', '[' or '('.",
  },
  P208: {
    severity: "error",
    message: "the file holds {0} tokens; pefc reads the first {1}",
    explain: "A .peft file holds a few hundred tokens; one of tens of thousands is damaged or not a .peft file. pefc checks the file up to this point.",
  },
  P301: {
    severity: "error",
    message: "{0} is not a key of {1}{2}",
    explain: "Each block accepts a fixed set of keys (see docs/language.md). Unknown keys are errors, never ignored.",
  },
  P302: {
    severity: "error",
    message: "{0} expects {1}, got {2}",
    explain: "The value has the wrong type: a number where a word is needed, a word outside the allowed set, and so on.",
  },
  P303: {
    severity: "error",
    message: "{0} must be {1} (got {2})",
    explain: "The value is outside the range the key accepts.",
  },
  P304: {
    severity: "error",
    message: "{0} is measured in {1}; {2} is not",
    explain: "Numbers may carry a unit (tokens, steps, epochs, %). The unit must fit the key: lengths are tokens, periods are steps or epochs.",
  },
  P305: {
    severity: "error",
    message: "give {0} or {1}, not both",
    explain: "The two keys say the same thing in two ways (e.g. epochs and steps, reduction and bottleneck). Keep one.",
  },
  P306: {
    severity: "error",
    message: "{0} is given twice in this block; the first is at line {1}",
    explain: "A key may appear once per block (inline arguments and the block together).",
  },
  P307: {
    severity: "error",
    message: "{0} needs {1}",
    explain: "A key or statement requires another one to be present.",
  },
  P308: {
    severity: "error",
    message: "invalid regular expression {0}: {1}",
    explain: "Selectors written as /.../ are JavaScript regular expressions matched against the whole module path. Allowed flag: i.",
  },
  P309: {
    severity: "error",
    message: "${0} is not defined{1}",
    explain: "A `$name` selector refers to a `select name = ...;` statement that must come earlier in the file.",
  },
  P310: {
    severity: "error",
    message: "invalid layer slice {0}: {1}",
    explain: "layers[...] takes integers and Python slices start:stop:step with a non-zero step.",
  },
  P311: {
    severity: "error",
    message: "{0} takes no {1}",
    explain: "Input-level prompt methods (p_tuning, prompt_tuning) apply to the input embeddings and take no module selector; overrides exist only for lora.",
  },
  P312: {
    severity: "error",
    message: "{0} cannot be a member of {1}; its members are {2}",
    explain: "mam is prefix + parallel adapter, unipelt is prefix + pfeiffer adapter + lora; their members may only restate those methods with other settings. Use combine for any other union.",
  },
  P313: {
    severity: "error",
    message: "select {0} is defined twice; the first is at line {1}",
    explain: "Each named selector is defined once.",
  },
  P314: {
    severity: "error",
    message: "adapter needs a variant: houlsby, pfeiffer or parallel",
    explain: "Bottleneck adapters come in three placements: houlsby (after attention and FFN), pfeiffer (after FFN), parallel (beside the FFN).",
  },
  P315: {
    severity: "warning",
    message: "{0}",
    explain: "A setting is accepted but probably not what was meant.",
  },
  P316: {
    severity: "error",
    message: "{0} is not supported yet: {1}",
    explain: "The language can say it, but this version of pefc cannot build it. The message says what to use instead.",
  },
  P320: {
    severity: "warning",
    message: "{0} is more than the {1} positions of {2} ({3} in config.json)",
    explain: "Examples longer than the model's position table run past what it was trained on (rotary models) or past its learned position embeddings (GPT-2), and their loss means little. Lower the length budget to the model's positions.",
  },
  P321: {
    severity: "warning",
    message: "r = {0} is more than min(in, out) = {1} of {2}{3}; a rank above a layer's width adds parameters and compute but nothing the update can learn",
    explain: "A low-rank update B·A of a layer with `in` inputs and `out` outputs has rank at most min(in, out). Choose r at or below it (LoRA ranks are usually 4 to 64).",
  },
  P401: {
    severity: "error",
    message: "{0} matched nothing in {1}; {2}",
    explain: "Every selector term must match at least one module of the model. The message lists the model's real candidates.",
  },
  P402: {
    severity: "error",
    message: "layers{0} is empty: {1} has {2} layers (0-{3})",
    explain: "Layer slices index the model's layer container, like Python slices: half-open, negatives count from the end.",
  },
  P403: {
    severity: "error",
    message: "{0} cannot adapt {1} ({2})",
    explain: "The method applies to a kind of module the selection does not contain (e.g. lora on a norm).",
  },
  P404: {
    severity: "error",
    message: "{0} cannot target {1}: it is a slice of the fused module {2}",
    explain: "On fused projections (ChatGLM2's query_key_value), @q/@k/@v are row slices; only methods that can update a slice accept them.",
  },
  P405: {
    severity: "error",
    message: "{0} has no module named by role @{1}; its roles are {2}",
    explain: "Roles are defined by the model profile (pefc plan lists them).",
  },
  P406: {
    severity: "error",
    message: "override {0} selects nothing the method adapts",
    explain: "An override block changes settings for modules the method already adapts; its selector must meet the method's selection.",
  },
  P407: {
    severity: "error",
    message: "the selection is empty after except",
    explain: "`except` removed every module the selection matched.",
  },
  P408: {
    severity: "error",
    message: "cannot read the model {0}: {1}",
    explain: "`model` names a Hugging Face checkpoint folder holding config.json, or builtin:NAME (tiny-llama, tiny-chatglm2, tiny-gpt2 with seeded weights; chatglm2-6b, llama-2-7b, gpt2 for planning only).",
  },
  P409: {
    severity: "error",
    message: "unsupported architecture {0} in {1}; pefc knows {2}",
    explain: "Architecture profiles exist for the llama family (Llama, Qwen2, SmolLM), chatglm2 and gpt2.",
  },
  P410: {
    severity: "error",
    message: "cannot load the model: {0}",
    explain: "The model folder needs config.json, its weights (model.safetensors or pytorch_model.bin, or the shards a model.safetensors.index.json or pytorch_model.bin.index.json names) and, for text data, tokenizer.json or a SentencePiece tokenizer.model, all from one checkpoint. Paths are relative to the .peft file.",
  },
  P411: {
    severity: "error",
    message: "cannot load the adapter to start from: {0}",
    explain: "`init from` names an adapter folder (adapter_config.json + adapter_model.safetensors, or PEFT's adapter_model.bin) trained for this model and these methods.",
  },
  P420: {
    severity: "error",
    message: "the model path {0} names the environment variable {1}, which is not set",
    explain: "A model path may name environment variables as ${NAME}, so one .peft file finds the checkpoint on every machine. Set the variable to the checkpoint folder (export NAME=/path/to/folder) or write the path itself.",
  },
  P501: {
    severity: "error",
    message: "{0} and {1} (line {2}) both {3} {4}",
    explain: "Two methods of the same kind (two low-rank updates, two input scalings, two adapters at one place) cannot touch the same module.",
  },
  P502: {
    severity: "error",
    message: "unfreeze {0} conflicts with {1} (line {2}) on {3}",
    explain: "A module trained in full cannot also carry an adapter of its own weights.",
  },
  P503: {
    severity: "error",
    message: "nothing to train: {0}",
    explain: "The spec leaves no trainable parameter. Add a method or unfreeze a module.",
  },
  P504: {
    severity: "error",
    message: "cannot merge {0} into the weights",
    explain: "Only lora, adalora and ia3 fold into base weights (and lora without gating). Export the adapter instead.",
  },
  P505: {
    severity: "error",
    message: "{0} appears twice; only one adalora adapter may train at a time",
    explain: "AdaLoRA allocates one rank budget across all of its matrices; a run has at most one adalora statement.",
  },
  P508: {
    severity: "error",
    message: "export-run: PEFT cannot express {0}; {1}",
    explain: "`pefc export-run` hands a run to Hugging Face PEFT, which has LoRA, AdaLoRA, IA3, prefix tuning (P-tuning v2), P-tuning with the MLP encoder and prompt tuning, one method per model. Bottleneck adapters, MAM, UniPELT, gates, BitFit as a method, several methods at once and trained base weights have no PEFT config; train them with `pefc run`, or rewrite the spec with one PEFT method.",
  },
  P601: {
    severity: "error",
    message: "data file {0} not found",
    explain: "Paths are relative to the .peft file's folder.",
  },
  P602: {
    severity: "error",
    message: "{0}:{1}: record has no field {2}; fields seen: {3}",
    explain: "The data block maps prompt/response (and system/history) to fields of each record; every record needs them.",
  },
  P603: {
    severity: "error",
    message: "{0}:{1}: {2}",
    explain: "A record could not be read. Fix the line or set `on_error = skip` in the data block to skip and count bad records.",
  },
  P604: {
    severity: "error",
    message: "template placeholder {0} is not one of {1}",
    explain: "Templates may use {system}, {prompt}, {response} and {round} (the turn number, from 1); a literal brace is written {{ or }}.",
  },
  P605: {
    severity: "error",
    message: "cannot tell the format of {0}; add `format = jsonl;` (or json, csv)",
    explain: "The format follows the file extension (.jsonl, .json, .csv) unless the data block names it.",
  },
  P606: {
    severity: "warning",
    message: "{0}% of the records exceed {1}",
    explain: "Many records are truncated; consider larger length budgets.",
  },
  P607: {
    severity: "error",
    message: "the data cannot train: {0}",
    explain: "The data statement's records, split or template leave nothing usable; the message says what to change.",
  },
  P620: {
    severity: "warning",
    message: "{0}: skipped {1} bad record(s) of {2} (on_error = skip); first: {3}",
    explain: "With `on_error = skip` a record that cannot be read or mapped is left out and counted instead of stopping the run. The first reasons are printed; fix the records to train on them.",
  },
  P701: {
    severity: "error",
    message: "adalora schedule is infeasible: tinit {0} + tfinal {1} must be less than the total steps {2}",
    explain: "AdaLoRA prunes ranks between step tinit and total_step - tfinal; that window must not be empty.",
  },
  P702: {
    severity: "error",
    message: "the run has no length: give steps, or epochs with a train data set",
    explain: "Training needs either `steps` or `epochs` together with a data statement.",
  },
  P703: {
    severity: "error",
    message: "training stopped at step {0}: the {1}; nothing of this step was saved, and {2}",
    explain: "A NaN or infinite loss, gradient or parameter means the run diverged (a learning rate too high for the model, no gradient clipping, f16 overflow) or an input was bad. Training stops at the step it happens, before anything is saved, so the checkpoints on disk stay good. Lower lr, set clip = 1.0, add a warmup or use precision = f32, then resume from the last good checkpoint.",
  },
  P801: {
    severity: "error",
    message: "no WebGPU adapter: {0}",
    explain: "pefc runs on WebGPU through Dawn. Without a GPU, install Mesa's llvmpipe Vulkan driver (Mesa >= 25).",
  },
  P802: {
    severity: "error",
    message: "precision f16 needs the shader-f16 feature, which {0} lacks",
    explain: "Use precision = f32 on this device.",
  },
  P803: {
    severity: "error",
    message: "the WebGPU device was lost ({0}); nothing after the last saved checkpoint was written",
    explain: "The GPU driver reset, the GPU was removed or hung, or the device ran out of memory. Checkpoints saved before the loss are whole: continue with pefc run FILE --resume DIR from the newest checkpoint-N. If it recurs, lower batch or max_length, or run on the CPU with --device reference.",
  },
  P902: {
    severity: "error",
    message: "cannot write {0}: {1}",
    explain: "An output folder could not be written. Check the path and free space.",
  },
  P903: {
    severity: "error",
    message: "{0} holds {1} {2}; pefc never writes over its own inputs",
    explain: "An output (save, export, merge --out, export --out) replaces its folder as a whole, so it may not be or contain the spec, its data, the model or an adapter the command reads, even with --overwrite. Give it a folder of its own, e.g. save every epoch to \"output\";",
  },
  P904: {
    severity: "error",
    message: "{0} is a file, not a folder pefc wrote; pass --overwrite to replace it, or choose another path",
    explain: "pefc writes its outputs as folders and replaces only what it wrote itself. A regular file at an output path is the user's: it stays unless --overwrite says to replace it.",
  },
  P905: {
    severity: "error",
    message: "{0} is a folder pefc did not write and holds {1} entries ({2}); pass --overwrite to write there anyway, or choose a new or empty folder",
    explain: "Folders pefc writes carry a .pefc-output marker; a non-empty folder without it is the user's, and pefc does not replace or fill it unless --overwrite is given.",
  },
  P906: {
    severity: "error",
    message: "{0} holds checkpoints of an earlier run (up to {1}); continue that run with --resume {2}, or pass --overwrite to start over",
    explain: "A rerun without --resume would mix its checkpoints, metrics.jsonl and loss.svg with the earlier run's (and keep N would count the earlier ones). --resume continues the earlier run; --overwrite starts a new one and removes the earlier run's checkpoints once its own first checkpoint is saved.",
  },
  P907: {
    severity: "error",
    message: "{0} holds the output of an earlier run; pass --overwrite to replace it, or choose another folder",
    explain: "pefc replaces an output folder of its own only when asked: --overwrite, or --resume when continuing the run that wrote it.",
  },
  P908: {
    severity: "error",
    message: "{0} is also written by {1}; give each output its own folder",
    explain: "Two outputs at one path, or a folder replaced as a whole that holds an output written before it, would destroy one another.",
  },
  P920: {
    severity: "error",
    message: "export-run: {0} is not empty and was not written by pefc export-run; give an empty or new folder, or --overwrite to replace it",
    explain: "`pefc export-run` replaces its output folder as a whole. It does so without asking only for a folder it wrote itself (it holds a .pefc-export-run file) or an empty one, so no other files are lost.",
  },
  P921: {
    severity: "error",
    message: "export-run: {0} is a file, not a folder",
    explain: "--to names the folder the bundle is written to.",
  },
} as const satisfies Record<string, DiagnosticInfo>;

export type DiagnosticCode = keyof typeof DIAGNOSTICS;
