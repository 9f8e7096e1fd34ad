// The runtime's file formats: safetensors (read, write), checkpoints, atomic writes, half floats.
export { UserError, isUserError } from "./errors.js";
export { DTYPES, dtypeSize, isDtype, numel, type Dtype, type RawArray } from "./dtypes.js";
export {
  readSafetensorsHeader,
  parseSafetensorsHeader,
  readTensor,
  readTensorBytes,
  readTensorF32,
  toF32,
  isFloat,
  type SafetensorsHeader,
  type Tensor,
  type TensorInfo,
} from "./safetensors.js";
export { serializeSafetensors, writeSafetensors, type TensorToWrite, type WritableDtype } from "./safetensors-write.js";
export { openCheckpoint, openSafetensorsFile, type Checkpoint } from "./checkpoint.js";
export { writeFileAtomic, replaceDirAtomic, recoverDir, dirSidecars, type AtomicOptions } from "./atomic.js";
export * from "./half.js";
export { openTorchFile, missingModelFiles, type CheckpointFormat } from "./checkpoint.js";
export { readTorchBinHeader, type TorchBinHeader } from "./torch-zip.js";
export { CheckpointError, type CheckpointErrorKind } from "./torch-errors.js";
