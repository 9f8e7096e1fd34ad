/**
 * Links the command line into the project's own node_modules/.bin, so that `npx pefc` in a clone
 * (the README's first command) runs bin/pefc.js directly. npm links the bins of a project's
 * dependencies there, never the project's own; without the link npx installs the clone as a
 * package into its cache on first use, which runs `prepare` (the whole build) a second time: about
 * 10 s of a first run. Run by `prepare`, after the build; an existing entry is left as it is.
 *
 *   npx tsx scripts/link-bin.ts
 */
import { existsSync, lstatSync, mkdirSync, symlinkSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const binDir = join(root, "node_modules", ".bin");
const link = join(binDir, "pefc");

if (existsSync(join(root, "node_modules"))) {
  let present = false;
  try {
    lstatSync(link);
    present = true;
  } catch {
    // not there yet
  }
  if (!present) {
    mkdirSync(binDir, { recursive: true });
    symlinkSync(relative(binDir, join(root, "bin", "pefc.js")), link);
  }
}
