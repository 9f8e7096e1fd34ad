/**
 * The outputs of a run, in the order it writes them (checkpoint roots, final saves, exported
 * adapters, merged exports), checked before the first step against the run's inputs and what is
 * already on disk (io/outputs.ts). Problems are diagnostics at the save or export statement.
 */
import { resolve } from "node:path";
import type { SaveSpec, ExportSpec } from "../../check/spec.js";
import { diag, type Diagnostic } from "../../diagnostics/index.js";
import type { Span } from "../../parser/ast.js";
import { checkOutputs, type OutputTarget } from "../io/outputs.js";
import type { Session } from "./session.js";

function saveLabel(sv: SaveSpec): string {
  if (!sv.every) return `save to "${sv.dir}"`;
  const unit = sv.every.every === 1 ? sv.every.unit.replace(/s$/, "") : sv.every.unit;
  return `save every ${sv.every.every === 1 ? "" : `${sv.every.every} `}${unit} to "${sv.dir}"`;
}

function exportLabel(e: ExportSpec): string {
  return `export ${e.what} to "${e.dir}"`;
}

export function runOutputs(s: Session): { target: OutputTarget; span: Span }[] {
  const at = (dir: string) => resolve(s.baseDir, dir);
  return [
    ...s.spec.save.filter((x) => x.every).map((sv) => ({ target: { path: at(sv.dir), kind: "checkpoints" as const, label: saveLabel(sv) }, span: sv.span })),
    ...s.spec.save.filter((x) => !x.every).map((sv) => ({ target: { path: at(sv.dir), kind: "adapter" as const, label: saveLabel(sv) }, span: sv.span })),
    ...s.spec.export.filter((e) => e.what === "adapter").map((e) => ({ target: { path: at(e.dir), kind: "export" as const, label: exportLabel(e) }, span: e.span })),
    ...s.spec.export.filter((e) => e.what === "merged").map((e) => ({ target: { path: at(e.dir), kind: "merged" as const, label: exportLabel(e) }, span: e.span })),
  ];
}

/** What the run reads: no output may be or hold one of these. */
export function runInputs(s: Session): { path: string; what: string }[] {
  const spec = s.spec;
  const inputs = [{ path: resolve(spec.file), what: "the spec" }];
  for (const d of [spec.data.train, spec.data.eval]) if (d?.file) inputs.push({ path: resolve(s.baseDir, d.file), what: "the data file" });
  if (spec.model && spec.model.builtin === undefined) inputs.push({ path: resolve(s.baseDir, spec.model.source), what: "the model" });
  if (spec.init) inputs.push({ path: resolve(s.baseDir, spec.init.from), what: "the adapter to start from" });
  return inputs;
}

export function checkRunOutputs(s: Session, o: { overwrite: boolean; resume?: string }): Diagnostic[] {
  const outs = runOutputs(s);
  const problems = checkOutputs(outs.map((x) => x.target), { overwrite: o.overwrite, inputs: runInputs(s), ...(o.resume ? { resume: o.resume } : {}) });
  return problems.map((p) => {
    const span = outs.find((x) => x.target === p.target)!.span;
    return diag(p.code, s.spec.file, span, p.args);
  });
}
