// Errors caused by the user's files (a corrupt checkpoint, a missing tokenizer.json), as opposed
// to bugs in pefc. The CLI turns a UserError into a diagnostic and exit code 1; any other Error
// is an internal error (exit 2). The message always names the file, and the tensor when there is one.

import { DeviceLimitError } from "../../codegen/wgsl/caps.js";

export class UserError extends Error {
  readonly file: string | undefined;
  readonly tensor: string | undefined;

  constructor(message: string, where: { file?: string; tensor?: string } = {}) {
    super(message);
    this.name = "UserError";
    this.file = where.file;
    this.tensor = where.tensor;
  }
}

/** A UserError, or a device limit the model's plan runs into (codegen's DeviceLimitError): both exit 1 with their message. */
export function isUserError(e: unknown): e is Error {
  return e instanceof UserError || e instanceof DeviceLimitError;
}
