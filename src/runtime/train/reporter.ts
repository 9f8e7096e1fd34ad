/**
 * How a run talks: on a terminal, one progress line redrawn in place (step/total, loss, lr,
 * tokens/s, ETA) with eval and save lines above it; otherwise plain log lines; with --json one JSON
 * object per event on standard output.
 */
import type { EvalLog, Reporter, StepLog } from "./loop.js";

function clock(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const ss = String(Math.floor(s % 60)).padStart(2, "0");
  return h > 0 ? `${h}:${String(m % 60).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function stepText(s: StepLog): string {
  const parts = [
    `step ${s.step}/${s.totalSteps}`,
    `epoch ${s.epoch.toFixed(2)}`,
    s.lossSteps > 1 ? `loss ${s.loss.toFixed(4)} (mean of ${s.lossSteps} steps)` : `loss ${s.loss.toFixed(4)}`,
    `lr ${s.lr.toExponential(2)}`,
    ...(s.gradNorm !== undefined ? [`grad_norm ${s.gradNorm.toFixed(3)}`] : []),
    // The first step of a run also compiles the kernels: rates start from the second.
    ...(Number.isFinite(s.tokensPerSecond) ? [`${s.tokensPerSecond.toFixed(0)} tok/s`, `eta ${clock(s.eta)}`] : ["tok/s and eta from the next step"]),
  ];
  return parts.join("  ");
}

export interface ReporterOptions {
  json: boolean;
  tty: boolean;
  write(line: string): void;
  /** Where the progress bar goes (stderr on a terminal). */
  bar?(text: string): void;
}

/** Whether a log line is due at `done` of `total`: the start, the end and about every quarter. */
function compileLineDue(done: number, total: number, parts: number): boolean {
  const every = Math.max(1, Math.ceil(total / parts));
  return done === 0 || done === total || done % every === 0;
}

function compilingText(done: number, total: number, started: number): string {
  return done === total ? `compiled ${total} kernels in ${((Date.now() - started) / 1000).toFixed(1)} s` : `compiling kernels ${done}/${total}`;
}

export function makeReporter(o: ReporterOptions): Reporter {
  let compileStart = Date.now();
  const compileClock = (done: number) => {
    if (done === 0) compileStart = Date.now();
    return compileStart;
  };
  if (o.json) {
    return {
      compiling: (done, total) => {
        const at = compileClock(done);
        if (compileLineDue(done, total, 10)) o.write(JSON.stringify({ event: "compiling", done, total, elapsed: (Date.now() - at) / 1000 }));
      },
      step: (s) => o.write(JSON.stringify({ event: "step", ...s })),
      eval: (e) => o.write(JSON.stringify({ event: "eval", ...e })),
      saved: (dir, step) => o.write(JSON.stringify({ event: "saved", dir, step })),
      info: (text) => o.write(JSON.stringify({ event: "info", text })),
    };
  }
  if (o.tty && o.bar) {
    const bar = o.bar;
    let last = "";
    const above = (line: string) => {
      bar(`\r\x1b[2K${line}\n${last}`);
    };
    return {
      compiling: (done, total) => {
        const at = compileClock(done);
        bar(`\r\x1b[2K${compilingText(done, total, at)}${done === total ? "\n" : ""}`);
      },
      step: (s) => {
        const width = 24;
        const filled = Math.round((width * s.step) / s.totalSteps);
        last = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${stepText(s)}`;
        bar(`\r\x1b[2K${last}`);
        if (s.step === s.totalSteps) bar("\n");
      },
      eval: (e: EvalLog) => above(`eval  step ${e.step}  loss ${e.loss.toFixed(4)}  perplexity ${e.perplexity.toFixed(2)}`),
      saved: (dir) => above(`saved ${dir}`),
      info: (text) => above(text),
    };
  }
  return {
    compiling: (done, total) => {
      const at = compileClock(done);
      if (compileLineDue(done, total, 4)) o.write(compilingText(done, total, at));
    },
    step: (s) => o.write(stepText(s)),
    eval: (e) => o.write(`eval  step ${e.step}  loss ${e.loss.toFixed(4)}  perplexity ${e.perplexity.toFixed(2)}`),
    saved: (dir) => o.write(`saved ${dir}`),
    info: (text) => o.write(text),
  };
}
