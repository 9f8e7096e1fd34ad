import type { FaultOptions } from "./lib/options.js";
import { Tally } from "./lib/tally.js";
export async function crashesFamily(_o: FaultOptions): Promise<Tally> {
  return new Tally("crashes");
}
