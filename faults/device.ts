import type { FaultOptions } from "./lib/options.js";
import { Tally } from "./lib/tally.js";
export async function deviceFamily(_o: FaultOptions): Promise<Tally> {
  return new Tally("device");
}
