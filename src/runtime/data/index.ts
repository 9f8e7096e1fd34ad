// Training data: reading data files, templating and tokenizing records, holding out eval records,
// and cutting epochs into padded batches.
export { loadDataset, type LoadOptions } from "./load.js";
export { makeBatches, padBatch, type Batch, type BatchOptions } from "./batches.js";
export { holdOut } from "./holdout.js";
export { epochOrder } from "./order.js";
export { parseTemplate, renderExchange, type Template, type Turn } from "./template.js";
export { encodeExchange, specialsOf } from "./encode.js";
export { DataError } from "./errors.js";
export { formatOf, readRecords, type DataFormat } from "./read-file.js";
export { IGNORE_INDEX, type DataStats, type Example, type SourceRecord } from "./types.js";
