/**
 * `npm run faults`: the fault suite. Each family tries bad inputs, crashes and bad numbers at
 * volume and prints one summary line of counts; any failure is printed with the command that
 * replays it, and the suite exits 1. docs/reliability.md says what the families hold pefc to.
 *
 *   npm run faults                         every family, fixed seeds plus a random one
 *   npm run faults -- --only specs,data    some families
 *   npm run faults -- --only specs --seed S --case I    replay one case
 */
import { checkpointsFamily } from "./checkpoints.js";
import { crashesFamily } from "./crashes.js";
import { dataFamily } from "./data.js";
import { deviceFamily } from "./device.js";
import { parseOptions, type FaultOptions } from "./lib/options.js";
import type { Tally } from "./lib/tally.js";
import { numbersFamily } from "./numbers.js";
import { pathsFamily } from "./paths.js";
import { specsFamily } from "./specs.js";

const FAMILIES: Record<string, (o: FaultOptions) => Promise<Tally>> = {
  specs: specsFamily,
  checkpoints: checkpointsFamily,
  data: dataFamily,
  numbers: numbersFamily,
  crashes: crashesFamily,
  paths: pathsFamily,
  device: deviceFamily,
};

async function main(): Promise<number> {
  let o: FaultOptions;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (e) {
    console.error(`faults: ${(e as Error).message}`);
    return 2;
  }
  const names = o.only ?? Object.keys(FAMILIES);
  const unknown = names.filter((n) => !FAMILIES[n]);
  if (unknown.length > 0) {
    console.error(`faults: unknown family ${unknown.join(", ")}; families: ${Object.keys(FAMILIES).join(", ")}`);
    return 2;
  }
  const tallies: Tally[] = [];
  for (const name of names) {
    const t0 = performance.now();
    const t = await FAMILIES[name]!(o);
    t.notes.push(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
    tallies.push(t);
    for (const f of t.failures) console.log(`FAIL ${f.what}\n  ${f.why.split("\n").join("\n  ")}\n  replay: ${f.replay}`);
    console.log(t.summary());
  }
  const failed = tallies.reduce((a, t) => a + t.failures.length, 0);
  console.log(`\nfault suite: ${tallies.reduce((a, t) => a + t.tried, 0)} cases in ${tallies.length} families, ${failed === 0 ? "no failure" : `${failed} FAILED`}`);
  for (const t of tallies) console.log(`  ${t.summary()}`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
