/**
 * safetensors files taken apart and put back together byte by byte, independently of pefc's own
 * reader and writer: the fault cases edit a real file's header and keep its data.
 */
export interface RawEntry {
  dtype: unknown;
  shape: unknown;
  data_offsets: unknown;
  [k: string]: unknown;
}

export interface RawFile {
  header: Record<string, RawEntry | Record<string, string>>;
  data: Uint8Array;
}

export function splitSafetensors(bytes: Uint8Array): RawFile {
  const len = Number(Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + len)).toString("utf8")) as RawFile["header"];
  return { header, data: bytes.subarray(8 + len) };
}

/** Length prefix (the true length unless `declared` is given) + header text + data. */
export function joinSafetensors(header: string | object, data: Uint8Array, declared?: bigint): Uint8Array {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declared ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

export const tensorNames = (f: RawFile): string[] => Object.keys(f.header).filter((k) => k !== "__metadata__");
