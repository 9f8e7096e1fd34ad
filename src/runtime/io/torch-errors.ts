// What can be wrong with a checkpoint file, as a typed error: the CLI prints the message (file and
// tensor named) and exits 1 like any UserError; tests and callers can tell the cases apart by kind.

import { UserError } from "./errors.js";

export type CheckpointErrorKind =
  /** The pickle names a Python global other than the tensor-rebuilding ones. */
  | "refused-global"
  /** A shard the index names is not in the folder. */
  | "missing-shard"
  /** The index maps a tensor to a shard that does not hold it. */
  | "absent-tensor"
  /** A zip entry or the archive ends before its data does. */
  | "truncated"
  /** A tensor's element type is not one pefc reads. */
  | "unsupported-dtype"
  /** torch.save's pre-1.6 (tar / bare pickle) format. */
  | "legacy-format"
  /** A compressed zip entry (torch.save stores its entries uncompressed). */
  | "compressed"
  /** Anything else malformed: not a zip, a bad pickle, a view outside its storage. */
  | "corrupt";

export class CheckpointError extends UserError {
  readonly kind: CheckpointErrorKind;

  constructor(kind: CheckpointErrorKind, message: string, where: { file?: string; tensor?: string } = {}) {
    super(message, where);
    this.name = "CheckpointError";
    this.kind = kind;
  }
}
