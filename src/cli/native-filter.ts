/**
 * Dawn writes its own diagnostics straight to the process's stderr from native code: on every
 * adapter request two `maxDynamic…BuffersPerPipelineLayout artificially reduced` warnings, and
 * without a Vulkan driver `vkCreateInstance` failures with a `CheckVkSuccessImpl` source line.
 * Nothing in Node can redirect a native write to fd 2 for a while, and no requested limit avoids
 * them (they come from the adapter's own limits), so commands that open a device run in a child
 * process whose stderr passes through this filter: Dawn's lines are dropped, everything else is
 * passed on as it arrives (progress redraws included). Standard input and output are the child's
 * own, so chat and generate stream as before.
 */
import { spawn } from "node:child_process";

/** Set in the child: its stderr is filtered, and whether the parent's stderr is a terminal. */
export const FILTERED_ENV = "PEFC_FILTERED";
export const STDERR_TTY_ENV = "PEFC_STDERR_TTY";

const DEVICE_COMMANDS = new Set(["run", "generate", "chat"]);

/** Whether `argv` may open a WebGPU device (a device command not pinned to the CPU reference). */
export function opensDevice(argv: readonly string[]): boolean {
  if (!DEVICE_COMMANDS.has(argv[0] ?? "") || argv.includes("--help") || argv.includes("-h")) return false;
  const i = argv.indexOf("--device");
  const device = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith("--device="))?.slice("--device=".length);
  return device !== "reference";
}

/** A line Dawn wrote: pefc's own lines never start so (Node's own warnings start with "(node:"). */
export function isDawnLine(line: string): boolean {
  return /^Warning: /.test(line) || /^\s+at \S+ \(.*(dawn|third_party)/.test(line);
}

const STARTS = ["Warning: ", "    at "];

/**
 * Passes text on as it arrives, holding back only a line that may still turn out to be Dawn's.
 * Dawn's writes may also land after a progress redraw that ends without a newline: a chunk that
 * follows such an open line (one begun with "\r") is judged afresh.
 */
export class DawnFilter {
  private held = "";
  private decided: "pass" | undefined;
  private redraw = false;
  private afterDawn = false;

  write(chunk: string): string {
    let out = "";
    if (this.decided === "pass" && this.redraw) this.decided = undefined;
    const parts = chunk.split("\n");
    parts.forEach((part, i) => {
      const complete = i < parts.length - 1;
      if (this.decided === "pass") out += part;
      else {
        if (this.held === "" && !this.redraw) this.redraw = part.startsWith("\r");
        this.held += part;
        if (complete) {
          if (!this.dropped(this.held)) out += this.held;
        } else if (!this.mayBeDawn(this.held)) {
          out += this.held;
          this.redraw ||= this.held.startsWith("\r");
          this.held = "";
          this.decided = "pass";
          this.afterDawn = false;
        }
      }
      if (complete) {
        const drop = this.decided !== "pass" && this.dropped(this.held);
        if (!drop) out += "\n";
        this.afterDawn = drop && this.held !== "";
        this.held = "";
        this.decided = undefined;
        this.redraw = false;
      }
    });
    return out;
  }

  end(): string {
    const rest = this.decided === undefined && !isDawnLine(this.held) ? this.held : "";
    this.held = "";
    return rest;
  }

  /** Dawn's line, or the blank line Dawn prints after its own. */
  private dropped(line: string): boolean {
    return isDawnLine(line) || (line === "" && this.afterDawn);
  }

  private mayBeDawn(text: string): boolean {
    return STARTS.some((s) => s.startsWith(text) || text.startsWith(s));
  }
}

/** Runs this same command in a child with its stderr filtered; resolves to the child's exit code. */
export function runFiltered(argv: readonly string[]): Promise<number> {
  const env = { ...process.env, [FILTERED_ENV]: "1", ...(process.stderr.isTTY ? { [STDERR_TTY_ENV]: "1" } : {}) };
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...argv], { stdio: ["inherit", "inherit", "pipe", "ipc"], env });
  const filter = new DawnFilter();
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    const text = filter.write(d);
    if (text) process.stderr.write(text);
  });
  // A terminal's Ctrl-C reaches the child itself; a signal sent to this process alone is passed on.
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const onInt = forward("SIGINT");
  const onTerm = forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return new Promise((done) => {
    child.on("error", (e) => {
      process.stderr.write(`pefc: internal error: cannot start the device process: ${e.message}\n`);
      done(2);
    });
    child.on("close", (code, signal) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      const rest = filter.end();
      if (rest) process.stderr.write(rest);
      done(code ?? (signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 2));
    });
  });
}

/** In the child: end with the parent (the IPC channel closes when it dies, even by SIGKILL). */
export function followParent(): void {
  if (process.env[FILTERED_ENV] !== "1" || !process.channel) return;
  process.channel.unref();
  process.on("disconnect", () => process.exit(process.exitCode ?? 1));
}
