// The one message a user without a usable adapter sees: what is missing and the exact commands
// that fix it on the machines pefc targets (Debian bookworm without a GPU).

import { diag } from "../../diagnostics/index.js";
import { UserError } from "../io/errors.js";

export const LLVMPIPE_INSTALL_COMMANDS: readonly string[] = [
  "echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list",
  "apt-get update",
  "apt-get install -y -t bookworm-backports mesa-vulkan-drivers",
];

/** No WebGPU adapter at all: a user error when the device was asked for, a fallback otherwise. */
export class NoAdapterError extends UserError {
  constructor(
    message: string,
    readonly detail: string | undefined,
  ) {
    super(message);
    this.name = "NoAdapterError";
  }
}

export function noAdapterError(detail?: string): NoAdapterError {
  const why =
    `Dawn found no GPU and no software Vulkan driver${detail ? ` (${detail})` : ""}. ` +
    "On Linux without a GPU, install Mesa's llvmpipe Vulkan driver (Mesa >= 25) from bookworm-backports:\n" +
    LLVMPIPE_INSTALL_COMMANDS.map((c) => `  ${c}`).join("\n");
  const d = diag("P801", "<device>", undefined, [why]);
  return new NoAdapterError(`${d.code}: ${d.message}`, detail);
}

/** The line printed when pefc falls back to the CPU reference because no adapter exists. */
export function fallbackNotice(): string {
  return "no WebGPU adapter (no GPU, no Vulkan driver): running on the CPU reference device, which is slower; for Mesa's faster llvmpipe device, install mesa-vulkan-drivers >= 25 (README, \"The Vulkan CPU driver\")";
}
