/** The command as a script (what bin/pefc.js runs from the build): exit code from main(). */
import { main } from "./main.js";
import { FILTERED_ENV, followParent, opensDevice, runFiltered } from "./native-filter.js";

process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
});
const argv = process.argv.slice(2);
// Commands that open a WebGPU device run in a child whose stderr is cleared of Dawn's own lines.
const work = process.env[FILTERED_ENV] !== "1" && opensDevice(argv) ? runFiltered(argv) : (followParent(), main(argv));
work.then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pefc: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
