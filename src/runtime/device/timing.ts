// GPU time of recorded work. With `timestamp-query` each compute pass writes a begin and an end
// timestamp (unquantized: pefc disables Dawn's timestamp_quantization) and the time is the sum
// over passes; without it, wall clock from submit to onSubmittedWorkDone, which also counts the
// submit itself. Either way, callers time many dispatches at once and divide.

export type TimingMethod = "timestamp" | "wallclock";

export class PassTimer {
  readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private readonly readBuf: GPUBuffer;

  constructor(
    private readonly device: GPUDevice,
    readonly maxPasses: number,
  ) {
    const count = 2 * maxPasses;
    this.querySet = device.createQuerySet({ type: "timestamp", count });
    this.resolveBuf = device.createBuffer({ size: 8 * count, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readBuf = device.createBuffer({ size: 8 * count, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  writesFor(pass: number): GPUComputePassTimestampWrites {
    if (pass >= this.maxPasses) throw new Error(`PassTimer holds ${this.maxPasses} passes`);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * pass, endOfPassWriteIndex: 2 * pass + 1 };
  }

  resolve(encoder: GPUCommandEncoder, passes: number): void {
    if (passes === 0) return;
    encoder.resolveQuerySet(this.querySet, 0, 2 * passes, this.resolveBuf, 0);
    encoder.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, 16 * passes);
  }

  /** Nanoseconds per pass, after the resolving command buffer was submitted. */
  async read(passes: number): Promise<number[]> {
    await this.readBuf.mapAsync(GPUMapMode.READ, 0, 16 * passes);
    const t = new BigUint64Array(this.readBuf.getMappedRange(0, 16 * passes).slice(0));
    this.readBuf.unmap();
    const out: number[] = [];
    for (let i = 0; i < passes; i++) out.push(Number(t[2 * i + 1]! - t[2 * i]!));
    return out;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuf.destroy();
    this.readBuf.destroy();
  }
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error("median of nothing");
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}
