/**
 * The pefc command line: dispatches to subcommands, parses flags strictly (an unknown flag is a
 * user error with usage, never a stack trace) and maps results to exit codes.
 */
import { parseArgs } from "node:util";
import { didYouMean } from "../diagnostics/index.js";
import { check, compile, explain, type Command } from "./commands.js";
import { plan } from "./plan.js";
import { run } from "./run.js";
import { generateCommand } from "./generate.js";
import { chat } from "./chat.js";
import { merge, exportCommand } from "./merge.js";
import { exportRunCommand } from "./export-run.js";
import { stdio, type Output } from "./io.js";

export const COMMANDS: Record<string, Command> = { run, generate: generateCommand, chat, merge, export: exportCommand, "export-run": exportRunCommand, check, plan, compile, explain };

function help(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `pefc: a compiler and runtime for parameter-efficient fine-tuning\n\nUsage: pefc COMMAND [options]\n\nCommands:\n${rows.join("\n")}\n\nRun pefc COMMAND --help for the options of a command.`;
}

function commandHelp(name: string, c: Command): string {
  const opts = Object.entries(c.options).map(([k, o]) => `  --${k}${o.type === "string" ? " VALUE" : ""}`.padEnd(24) + o.description);
  return `Usage: ${c.usage}\n\nOptions:\n${[...opts, "  --help".padEnd(24) + "show this help"].join("\n")}`.replace("Usage: pefc", `Usage: pefc`) + (name ? "" : "");
}

export async function main(argv: string[], io: Output = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    io.out(help());
    return name ? 0 : 1;
  }
  if (name === "--version") {
    io.out("pefc 0.1.0");
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    const guess = didYouMean(name, Object.keys(COMMANDS));
    io.err(`pefc: unknown command '${name}'${guess ? `; did you mean '${guess}'?` : ""}\n\n${help()}`);
    return 1;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...cmd.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    io.err(`pefc ${name}: ${(e as Error).message.replace(/\. To specify a positional.*$/s, "")}\n\n${commandHelp(name, cmd)}`);
    return 1;
  }
  if (parsed.values.help) {
    io.out(commandHelp(name, cmd));
    return 0;
  }
  return await cmd.run(parsed.positionals, parsed.values, io);
}
