/**
 * check(): AST → Spec. Binds each statement to its schema, fills defaults, checks relations between
 * statements, and reports every problem it finds in one pass. Never throws on user input.
 */
import type { Assign, DataStmt, HybridStmt, MethodStmt, PeftFile, Selector, Span, Statement } from "../parser/ast.js";
import { type Diagnostic, diag, hasErrors, q } from "../diagnostics/index.js";
import * as S from "./schemas.js";
import { checkBlock, describeValue } from "./options.js";
import { checkSelector } from "./selectors.js";
import { expandEnv } from "./env-path.js";
import { parse } from "../parser/index.js";
import { relocateSpans } from "../parser/print.js";
import type { DataSpec, HybridSpec, MethodSpec, PeriodSpec, Spec, TrainSpec } from "./spec.js";

export const LANGUAGE_VERSION = "0.1";
export const TEMPLATE_NAMES = ["model", "chatglm2", "llama2", "alpaca", "plain"] as const;
const PLACEHOLDERS = ["system", "prompt", "response", "round"];

/**
 * Which methods a preset may contain, and the preset's own settings for them. unipelt's lora takes
 * the architecture's default target (q and v, or the fused qkv), as PEFT's defaults do.
 */
const PRESETS: Record<"mam" | "unipelt", { members: string; expand: string; gated: boolean }> = {
  mam: { members: "prefix, adapter parallel", expand: "prefix tokens=30 hidden=800; adapter parallel reduction=2 scaling=4;", gated: false },
  unipelt: { members: "prefix, adapter pfeiffer, lora", expand: "prefix tokens=10; adapter pfeiffer reduction=16; lora r=8 alpha=2;", gated: true },
};

export interface CheckOptions {
  /**
   * Check statements on their own, without requiring a whole run (a model statement, something
   * to train). Used for fragments and the conformance lines.
   */
  fragment?: boolean;
}

export interface CheckResult {
  spec: Spec;
  diagnostics: Diagnostic[];
}

export function check(ast: PeftFile, options: CheckOptions = {}): CheckResult {
  return new Checker(ast.file, options).run(ast);
}

class Checker {
  private readonly out: Diagnostic[] = [];
  private readonly selects = new Map<string, Selector>();
  private readonly spec: Spec;
  private trainItems?: { items: Assign[]; span: Span };
  private readonly seen = new Map<string, Span>();
  private readonly dataStmts: { train?: DataStmt; eval?: DataStmt } = {};

  constructor(private readonly file: string, private readonly options: CheckOptions) {
    this.spec = {
      file, version: LANGUAGE_VERSION, selects: {}, data: {}, freeze: [], methods: [], hybrids: [],
      train: undefined as unknown as TrainSpec, save: [], export: [],
    };
  }

  run(ast: PeftFile): CheckResult {
    ast.statements.forEach((st, i) => this.statement(st, i));
    this.spec.train = this.train();
    this.relations(ast);
    this.spec.selects = Object.fromEntries(this.selects);
    return { spec: this.spec, diagnostics: this.out };
  }

  private once(what: string, span: Span): boolean {
    const first = this.seen.get(what);
    if (first) {
      this.out.push(diag("P204", this.file, span, [what, first.line]));
      return false;
    }
    this.seen.set(what, span);
    return true;
  }

  private statement(st: Statement, index: number): void {
    switch (st.kind) {
      case "header":
        if (index !== 0) this.out.push(diag("P201", this.file, st.span, ["the header 'peft VERSION;' first in the file", "it later"]));
        else if (st.version !== LANGUAGE_VERSION) this.out.push(diag("P206", this.file, st.versionSpan, [st.version, LANGUAGE_VERSION]));
        return;
      case "model": {
        if (!this.once("model", st.span)) return;
        const b = checkBlock(S.MODEL, "model", st.items, this.file, this.out);
        const expanded = expandEnv(st.source);
        if ("unset" in expanded) this.out.push(diag("P420", this.file, st.sourceSpan, [JSON.stringify(st.source), expanded.unset]));
        const source = "value" in expanded ? expanded.value : st.source;
        const builtin = source.startsWith("builtin:") ? source.slice("builtin:".length) : undefined;
        if (source.trim() === "" || builtin === "") {
          this.out.push(diag("P302", this.file, st.sourceSpan, ["model", "a checkpoint folder or builtin:NAME", JSON.stringify(st.source)]));
        }
        this.spec.model = { source, seed: b.values.seed as number, span: st.sourceSpan, ...(source !== st.source ? { asWritten: st.source } : {}), ...(builtin ? { builtin } : {}) };
        return;
      }
      case "select":
        if (this.selects.has(st.name)) {
          const first = this.spec.selects[st.name];
          this.out.push(diag("P313", this.file, st.nameSpan, [st.name, first?.span.line ?? st.span.line]));
          return;
        }
        checkSelector(st.selector, this.selects, this.file, this.out);
        this.selects.set(st.name, st.selector);
        this.spec.selects[st.name] = st.selector;
        return;
      case "data": {
        if (!this.once(`data ${st.split}`, st.span)) return;
        this.dataStmts[st.split] = st;
        const d = this.data(st);
        if (d) this.spec.data[st.split] = d;
        return;
      }
      case "freeze":
        if (st.target.kind === "selector") checkSelector(st.target.selector, this.selects, this.file, this.out);
        this.spec.freeze.push({
          action: st.action,
          target: st.target.kind === "selector" ? { kind: "selector", selector: st.target.selector } : { kind: st.target.kind },
          span: st.span,
        });
        return;
      case "method":
        this.method(st);
        return;
      case "hybrid":
        this.hybrid(st);
        return;
      case "init":
        if (!this.once("init from", st.span)) return;
        if (st.from.trim() === "") this.out.push(diag("P302", this.file, st.fromSpan, ["init from", "an adapter folder", '""']));
        this.spec.init = { from: st.from, span: st.fromSpan };
        return;
      case "train":
        if (!this.once("train", st.span)) return;
        this.trainItems = { items: st.items, span: st.span };
        return;
      case "save":
        this.save(st);
        return;
      case "export":
        this.spec.export.push({ what: st.what, dir: st.to, span: st.span });
        return;
    }
  }

  private data(st: DataStmt): DataSpec | undefined {
    const b = checkBlock(S.DATA, `data ${st.split}`, st.items, this.file, this.out);
    const v = b.values;
    let format = v.format as DataSpec["format"];
    if (st.file !== undefined && format === undefined) {
      const ext = /\.(jsonl|json|csv)$/i.exec(st.file)?.[1]?.toLowerCase();
      if (ext) format = ext as DataSpec["format"];
      else this.out.push(diag("P605", this.file, st.fileSpan ?? st.span, [JSON.stringify(st.file)]));
    }
    if (st.split === "train" && b.given.has("split")) {
      this.out.push(diag("P307", this.file, b.given.get("split")!.keySpan, ["split", "data eval (it holds out part of the train data)"]));
    }
    if (st.file === undefined && !(st.split === "eval" && b.given.has("split"))) {
      this.out.push(diag("P307", this.file, st.splitSpan, [`data ${st.split}`, st.split === "eval" ? 'a file ("dev.jsonl") or split = 5%' : 'a file ("train.jsonl")']));
    }
    if (st.file !== undefined && b.given.has("split")) {
      this.out.push(diag("P305", this.file, b.given.get("split")!.keySpan, ["a file", "split"]));
    }
    if (b.given.has("response") && !b.given.has("prompt")) {
      this.out.push(diag("P307", this.file, b.given.get("response")!.keySpan, ["response", "prompt"]));
    }
    const templateItem = b.given.get("template");
    let template: DataSpec["template"] = { name: "model" };
    if (templateItem) {
      const tv = templateItem.value;
      if (tv.kind === "name") {
        if ((TEMPLATE_NAMES as readonly string[]).includes(tv.value)) template = { name: tv.value };
        else this.out.push(diag("P302", this.file, tv.span, ["'template'", `a template name (${TEMPLATE_NAMES.join(", ")}) or a quoted template`, describeValue(tv)]));
      } else if (tv.kind === "string") {
        for (const m of tv.value.replace(/\{\{|\}\}/g, "").matchAll(/\{([^{}]*)\}/g)) {
          if (!PLACEHOLDERS.includes(m[1]!)) this.out.push(diag("P604", this.file, tv.span, [`{${m[1]}}`, PLACEHOLDERS.map((p) => `{${p}}`).join(", ")]));
        }
        if (!tv.value.includes("{prompt}")) this.out.push(diag("P307", this.file, tv.span, ["a custom template", "a {prompt} placeholder"]));
        template = { text: tv.value };
      }
    }
    const lengths: DataSpec["lengths"] = b.given.has("max_length")
      ? { maxLength: v.max_length as number }
      : { maxSource: (v.max_source as number | undefined) ?? 512, maxTarget: (v.max_target as number | undefined) ?? 512 };
    const fields: DataSpec["fields"] = {};
    for (const k of ["prompt", "response", "system", "history"] as const) if (typeof v[k] === "string") fields[k] = v[k] as string;
    const d: DataSpec = {
      split: st.split,
      mode: fields.prompt ? "text" : "tokenized",
      fields,
      template,
      lengths,
      truncation: v.truncation as DataSpec["truncation"],
      loss: v.loss as DataSpec["loss"],
      shuffle: (v.shuffle as boolean | undefined) ?? st.split === "train",
      seed: v.seed as number,
      onError: v.on_error as DataSpec["onError"],
      span: st.span,
    };
    if (format) d.format = format;
    if (st.file !== undefined) d.file = st.file;
    if (st.fileSpan) d.fileSpan = st.fileSpan;
    const split = b.given.get("split");
    if (split && split.value.kind === "number") {
      if (split.value.unit === "percent") {
        if (split.value.value >= 100) this.out.push(diag("P303", this.file, split.value.span, ["'split'", "< 100%", `${split.value.value}%`]));
        d.holdout = { share: split.value.value / 100 };
      } else if (!Number.isInteger(split.value.value)) {
        this.out.push(diag("P302", this.file, split.value.span, ["'split'", "a whole number of records or a percentage", describeValue(split.value)]));
      } else d.holdout = { count: split.value.value };
    }
    return d;
  }

  private method(st: MethodStmt, hybrid?: { index: number; target?: Selector; gated: boolean }): number | undefined {
    const items = [...st.args, ...st.items];
    const what = st.variant ? `${st.method} ${st.variant}` : st.method;
    const target = st.target;
    if (st.target) checkSelector(st.target, this.selects, this.file, this.out);
    if ((st.method === "p_tuning" || st.method === "prompt_tuning") && st.target) {
      this.out.push(diag("P311", this.file, st.target.span, [st.method, "'on' selector: it works on the input embeddings"]));
    }
    if (st.method !== "lora") {
      for (const o of st.overrides) this.out.push(diag("P311", this.file, o.span, [what, "override blocks"]));
    }
    const base = {
      gated: hybrid?.gated ?? false,
      span: st.span,
      line: st.span.line,
      ...(target ? { target } : {}),
      ...(hybrid?.target ? { within: hybrid.target } : {}),
      ...(hybrid ? { hybrid: hybrid.index } : {}),
    };
    let spec: MethodSpec;
    switch (st.method) {
      case "lora": {
        const v = checkBlock(S.LORA, "lora", items, this.file, this.out).values;
        const overrides = st.overrides.map((o) => {
          checkSelector(o.selector, this.selects, this.file, this.out);
          const ov = checkBlock(S.LORA_OVERRIDE, "an override", o.items, this.file, this.out);
          const options = Object.fromEntries([...ov.given.keys()].map((k) => [k, ov.values[k]]));
          return { selector: o.selector, options, span: o.span };
        });
        spec = { ...base, method: "lora", options: v as unknown as S_Lora, overrides };
        break;
      }
      case "adalora": {
        const b = checkBlock(S.ADALORA, "adalora", items, this.file, this.out);
        const v = b.values as unknown as S_Adalora;
        if (b.given.has("init_r") && b.given.has("r") && v.init_r < v.r) {
          this.out.push(diag("P303", this.file, b.given.get("init_r")!.value.span, ["'init_r'", `>= r (${v.r})`, String(v.init_r)]));
        } else if (!b.given.has("init_r") && v.init_r < v.r) {
          v.init_r = Math.ceil(1.5 * v.r);
        }
        if (v.total_step !== undefined && v.tinit + v.tfinal >= v.total_step) {
          this.out.push(diag("P701", this.file, (b.given.get("total_step") ?? st).span, [v.tinit, v.tfinal, v.total_step]));
        }
        spec = { ...base, method: "adalora", options: v };
        break;
      }
      case "ia3": {
        const b = checkBlock(S.IA3, "ia3", items, this.file, this.out);
        const ff = b.values.feedforward;
        spec = { ...base, method: "ia3", options: ff === undefined ? {} : { feedforward: Array.isArray(ff) ? (ff as string[]) : [ff as string] } };
        break;
      }
      case "bitfit":
        checkBlock(S.BITFIT, "bitfit", items, this.file, this.out);
        spec = { ...base, method: "bitfit", options: {} };
        break;
      case "adapter": {
        if (!st.variant) {
          this.out.push(diag("P314", this.file, st.headSpan));
          return undefined;
        }
        const b = checkBlock(S.ADAPTER[st.variant], what, items, this.file, this.out);
        const v = { ...b.values } as Record<string, unknown>;
        if (b.given.has("bottleneck")) delete v.reduction;
        spec = { ...base, method: "adapter", variant: st.variant, options: v as unknown as S_Adapter };
        break;
      }
      case "prefix":
      case "p_tuning_v2": {
        const b = checkBlock(st.method === "prefix" ? S.PREFIX : S.P_TUNING_V2, st.method, items, this.file, this.out);
        if (b.given.has("hidden") && b.values.projection === false) {
          this.out.push(diag("P307", this.file, b.given.get("hidden")!.keySpan, ["'hidden'", "projection = true"]));
        }
        spec = { ...base, method: st.method, options: b.values as unknown as S_Prefix };
        break;
      }
      case "p_tuning": {
        const b = checkBlock(S.P_TUNING, "p_tuning", items, this.file, this.out);
        for (const k of ["encoder_layers", "encoder_dropout"]) {
          if (b.given.has(k) && b.values.encoder !== "lstm") this.out.push(diag("P307", this.file, b.given.get(k)!.keySpan, [q(k), "encoder = lstm"]));
        }
        spec = { ...base, method: "p_tuning", options: b.values as unknown as S_PTuning };
        break;
      }
      case "prompt_tuning": {
        const b = checkBlock(S.PROMPT_TUNING, "prompt_tuning", items, this.file, this.out);
        const initItem = b.given.get("init");
        let init: { kind: "random" } | { kind: "vocab" } | { kind: "text"; text: string } = { kind: "random" };
        if (initItem?.value.kind === "string") init = { kind: "text", text: initItem.value.value };
        else if (initItem?.value.kind === "name") {
          if (initItem.value.value === "vocab" || initItem.value.value === "random") init = { kind: initItem.value.value };
          else this.out.push(diag("P302", this.file, initItem.value.span, ["'init'", 'random, vocab or a quoted text', describeValue(initItem.value)]));
        }
        spec = { ...base, method: "prompt_tuning", options: { tokens: b.values.tokens as number, init } };
        break;
      }
    }
    this.spec.methods.push(spec);
    return this.spec.methods.length - 1;
  }

  private hybrid(st: HybridStmt): void {
    const b = checkBlock(S.HYBRID, st.hybrid, [...st.args, ...st.items], this.file, this.out);
    const preset = st.hybrid === "combine" ? undefined : PRESETS[st.hybrid];
    const gated = (b.values.gate as boolean | undefined) ?? preset?.gated ?? false;
    if (st.target) checkSelector(st.target, this.selects, this.file, this.out);
    const index = this.spec.hybrids.length;
    const h: HybridSpec = { kind: st.hybrid, gated, members: [], span: st.span };
    this.spec.hybrids.push(h);
    const ctx = { index, gated, ...(st.target ? { target: st.target } : {}) };
    let members = st.members;
    if (preset) {
      // A preset's members are its own statements, each restated member replacing its default.
      const expanded = presetMembers(st.hybrid as "mam" | "unipelt", preset.expand, st.headSpan);
      const key = (m: MethodStmt) => (m.variant ? `${m.method} ${m.variant}` : m.method);
      const allowed = new Set(expanded.map(key));
      for (const m of st.members) {
        if (!allowed.has(key(m))) this.out.push(diag("P312", this.file, m.headSpan, [key(m), st.hybrid, preset.members]));
      }
      members = expanded.map((d) => {
        const user = st.members.find((m) => key(m) === key(d));
        if (!user) return d;
        const keys = new Set([...user.args, ...user.items].map((a) => a.key));
        for (const [a, b] of exclusivePairs(d)) {
          if (keys.has(a)) keys.add(b);
          if (keys.has(b)) keys.add(a);
        }
        const merged: MethodStmt = { ...user, args: [...d.args.filter((a) => !keys.has(a.key)), ...user.args] };
        const target = user.target ?? d.target;
        if (target) merged.target = target;
        return merged;
      });
    } else if (st.members.length === 0) {
      this.out.push(diag("P307", this.file, st.headSpan, ["combine", "member methods in a { } block"]));
    }
    for (const m of members) {
      const i = this.method(m, ctx);
      if (i !== undefined) h.members.push(i);
    }
  }

  private save(st: Extract<Statement, { kind: "save" }>): void {
    if (st.every && (!Number.isSafeInteger(st.every.count) || st.every.count < 1)) {
      this.out.push(diag("P303", this.file, st.every.span, ["'save every'", ">= 1", String(st.every.count)]));
    }
    if (st.keep !== undefined && (!Number.isSafeInteger(st.keep) || st.keep < 1)) {
      this.out.push(diag("P303", this.file, st.keepSpan ?? st.span, ["'keep'", ">= 1", String(st.keep)]));
    }
    if (st.keep !== undefined && !st.every) this.out.push(diag("P307", this.file, st.keepSpan ?? st.span, ["'keep'", "'every' (a single save has nothing to rotate)"]));
    this.spec.save.push({
      dir: st.to ?? "output",
      span: st.span,
      ...(st.every ? { every: { every: st.every.count, unit: st.every.unit } } : {}),
      ...(st.keep !== undefined ? { keep: st.keep } : {}),
    });
  }

  private train(): TrainSpec {
    const t = this.trainItems;
    const b = checkBlock(S.TRAIN, "train", t?.items ?? [], this.file, this.out);
    const v = b.values;
    const optimizer = v.optimizer as "adamw" | "adam" | "sgd";
    for (const [key, opts] of Object.entries(S.OPTIMIZER_KEYS)) {
      const item = b.given.get(key);
      if (item && !opts.includes(optimizer)) this.out.push(diag("P307", this.file, item.keySpan, [q(key), `optimizer = ${opts.join(" or ")}`]));
    }
    const period = (key: string, dflt: PeriodSpec): PeriodSpec => {
      const item = b.given.get(key);
      if (!item || item.value.kind !== "number") return dflt;
      return { every: item.value.value, unit: item.value.unit === "epochs" ? "epochs" : "steps" };
    };
    const warmupItem = b.given.get("warmup");
    const warmup: TrainSpec["warmup"] =
      warmupItem?.value.kind === "number" && warmupItem.value.unit === "percent"
        ? { share: warmupItem.value.value / 100 }
        : { steps: v.warmup as number };
    if (warmupItem?.value.kind === "number" && warmupItem.value.unit === "percent" && warmupItem.value.value > 100) {
      this.out.push(diag("P303", this.file, warmupItem.value.span, ["'warmup'", "<= 100%", `${warmupItem.value.value}%`]));
    } else if (warmupItem?.value.kind === "number" && warmupItem.value.unit !== "percent" && !Number.isInteger(warmupItem.value.value)) {
      this.out.push(diag("P302", this.file, warmupItem.value.span, ["'warmup'", "a whole number of steps or a percentage", describeValue(warmupItem.value)]));
    }
    const spec: TrainSpec = {
      length: v.steps !== undefined ? { steps: v.steps as number } : { epochs: (v.epochs as number | undefined) ?? 3 },
      batch: v.batch as number,
      gradAccum: v.grad_accum as number,
      lr: v.lr as number,
      optimizer:
        optimizer === "sgd"
          ? { kind: "sgd", momentum: v.momentum as number, nesterov: v.nesterov as boolean, weightDecay: v.weight_decay as number }
          : { kind: optimizer, betas: v.betas as [number, number], eps: v.eps as number, weightDecay: v.weight_decay as number },
      schedule: v.schedule as TrainSpec["schedule"],
      warmup,
      clip: v.clip as number,
      precision: v.precision as TrainSpec["precision"],
      seed: v.seed as number,
      logEvery: period("log_every", { every: 10, unit: "steps" }),
      evalEvery: period("eval_every", { every: 1, unit: "epochs" }),
    };
    if (t) spec.span = t.span;
    const nest = b.given.get("nesterov");
    if (nest && v.nesterov === true && (v.momentum as number) === 0) this.out.push(diag("P307", this.file, nest.keySpan, ["'nesterov'", "momentum > 0"]));
    return spec;
  }

  /**
   * `data eval` reads its records as `data train` does: every key the eval block does not set
   * (field mapping, template, lengths, loss, format) comes from the train block. Shuffling, the seed
   * and the split stay the eval block's own.
   */
  private inheritEval(): void {
    const { train, eval: ev } = this.dataStmts;
    if (!train || !ev || !this.spec.data.eval) return;
    const own = new Set(ev.items.map((i) => i.key));
    const inherited = train.items.filter((i) => !own.has(i.key) && !["shuffle", "seed", "split", "on_error"].includes(i.key) && !(i.key === "format" && ev.file !== undefined));
    if (inherited.length === 0) return;
    const scratch = new Checker(this.file, this.options);
    const merged = scratch.data({ ...ev, items: [...inherited, ...ev.items] });
    if (merged) {
      if (ev.file === undefined && this.spec.data.train?.format) merged.format = this.spec.data.train.format;
      this.spec.data.eval = merged;
    }
  }

  /** Relations between statements: what a whole run needs and what cannot go together. */
  private relations(ast: PeftFile): void {
    this.inheritEval();
    const adalora = this.spec.methods.filter((m) => m.method === "adalora");
    for (const m of adalora.slice(1)) this.out.push(diag("P505", this.file, m.span, ["adalora"]));
    const ada = adalora[0];
    if (ada && ada.method === "adalora" && ada.options.total_step === undefined && "steps" in this.spec.train.length) {
      const total = this.spec.train.length.steps;
      if (ada.options.tinit + ada.options.tfinal >= total) {
        this.out.push(diag("P701", this.file, ada.span, [ada.options.tinit, ada.options.tfinal, total]));
      }
    }
    if (this.options.fragment) return;
    if (!this.spec.model) this.out.push(diag("P205", this.file, ast.statements[0]?.span ?? ast.span, ['a model statement (model "path/to/checkpoint"; or model "builtin:tiny-chatglm2";)']));
    const unfreezes = this.spec.freeze.some((f) => f.action === "unfreeze");
    if (this.spec.methods.length === 0 && !unfreezes && !hasErrors(this.out)) {
      this.out.push(diag("P503", this.file, ast.statements[0]?.span ?? ast.span, ["the file has no method (lora, adalora, ...) and no unfreeze statement"]));
    }
    if ("epochs" in this.spec.train.length && !this.spec.data.train && !hasErrors(this.out)) {
      const item = this.trainItems?.items.find((i) => i.key === "epochs");
      this.out.push(diag("P702", this.file, item?.keySpan ?? this.trainItems?.span ?? ast.statements[0]?.span ?? ast.span));
    }
  }
}

type S_Lora = Extract<MethodSpec, { method: "lora" }>["options"];
type S_Adalora = Extract<MethodSpec, { method: "adalora" }>["options"];
type S_Adapter = Extract<MethodSpec, { method: "adapter" }>["options"];
type S_Prefix = Extract<MethodSpec, { method: "prefix" }>["options"];
type S_PTuning = Extract<MethodSpec, { method: "p_tuning" }>["options"];

/**
 * The members a preset stands for, parsed from its own .peft text so presets read like user code.
 * Their spans are moved onto the hybrid statement, so messages point at the user's file.
 */
function presetMembers(name: "mam" | "unipelt", text: string, at: Span): MethodStmt[] {
  const parsed = parse(text, `<${name} preset>`);
  return parsed.ast.statements.filter((s): s is MethodStmt => s.kind === "method").map((m) => relocateSpans(m, at));
}

/** The exclusive key pairs of a method's schema (reduction/bottleneck for adapters). */
function exclusivePairs(m: MethodStmt): [string, string][] {
  if (m.method === "adapter" && m.variant) return S.ADAPTER[m.variant]["x-exclusive"] ?? [];
  return [];
}
