// The one message a user without a usable adapter sees: what is missing and the exact commands
// that fix it on the machines pefc targets (Debian bookworm without a GPU).

import { diag } from "../../diagnostics/index.js";
import { UserError } from "../io/errors.js";

export const LLVMPIPE_INSTALL_COMMANDS: readonly string[] = [
  "echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list",
  "apt-get update",
  "apt-get install -y -t bookworm-backports mesa-vulkan-drivers",
];

export function noAdapterError(detail?: string): UserError {
  const why =
    `Dawn found no GPU and no software Vulkan driver${detail ? ` (${detail})` : ""}. ` +
    "On Linux without a GPU, install Mesa's llvmpipe Vulkan driver (Mesa >= 25) from bookworm-backports:\n" +
    LLVMPIPE_INSTALL_COMMANDS.map((c) => `  ${c}`).join("\n");
  const d = diag("P801", "<device>", undefined, [why]);
  return new UserError(`${d.code}: ${d.message}`);
}
