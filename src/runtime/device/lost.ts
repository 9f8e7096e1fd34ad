/**
 * The WebGPU device went away under a run: a driver reset, a GPU removed or hung, the process out
 * of device memory. It is the machine's doing, not a bug of pefc's nor a mistake in the user's
 * files, so it ends the command with exit 1 and says how to go on, like a user error (P803).
 */
import { UserError } from "../io/errors.js";

export class DeviceLostError extends UserError {
  constructor(readonly reason: string) {
    super(
      `error P803: the WebGPU device was lost (${reason}); nothing after the last saved checkpoint was written. ` +
        "Continue from the newest checkpoint-N with pefc run FILE --resume DIR; if it happens again, lower batch or max_length, or run with --device reference",
    );
    this.name = "DeviceLostError";
  }
}
