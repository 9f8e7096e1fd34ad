/**
 * Static buffer reuse for activations: a value takes a free pooled buffer when it is defined and
 * gives it back after its last reader. Buffers are sized only when the plan is done, so a value
 * takes the smallest free buffer that holds it, else grows the largest free one, else a new one
 * is made: the pool ends as few buffers as the widest point of the graph needs. Each buffer holds
 * one value at a time, so a dispatch never binds one buffer both read-only and writable.
 */
import { alignUp, BINDING_ALIGN, type BufferDecl } from "./types.js";

export class BufferPool {
  private readonly free = new Set<BufferDecl>();
  /** Given back by the op before the current one: taken last, so neighbouring ops can merge. */
  private recent = new Set<BufferDecl>();
  private releasedNow = new Set<BufferDecl>();
  readonly all: BufferDecl[] = [];

  constructor(private readonly create: (bytes: number) => BufferDecl) {}

  /**
   * A free buffer of at least `bytes`: the smallest that fits, else the largest grown to fit, else
   * a new one. A buffer the previous op gave back comes after those, and after a new one too where
   * that is small beside the pool: its next writer would otherwise follow that op's reads
   * directly, and the two could never run as one dispatch (merge.ts).
   */
  take(bytes: number): BufferDecl {
    const need = alignUp(Math.max(bytes, 4), BINDING_ALIGN);
    // The smallest free buffer of `bs` that holds `need`, else the largest of them grown to it.
    const reuse = (bs: BufferDecl[]): BufferDecl | undefined => {
      const holds = bs.filter((b) => b.bytes >= need);
      if (holds.length) return holds.reduce((x, b) => (b.bytes < x.bytes ? b : x));
      if (!bs.length) return undefined;
      const grown = bs.reduce((x, b) => (b.bytes > x.bytes ? b : x));
      grown.bytes = need;
      return grown;
    };
    const free = [...this.free];
    let best = reuse(free.filter((b) => !this.recent.has(b)));
    // A small new buffer (at most 1/16 of the pool so far) before a recent one.
    if (!best && need * 16 <= this.all.reduce((n, b) => n + b.bytes, 0)) best = this.add(need);
    best ??= reuse(free.filter((b) => this.recent.has(b))) ?? this.add(need);
    this.free.delete(best);
    return best;
  }

  private add(bytes: number): BufferDecl {
    const b = this.create(bytes);
    this.all.push(b);
    return b;
  }

  release(b: BufferDecl): void {
    if (this.free.has(b)) throw new Error(`program: pooled buffer ${b.label} released twice`);
    this.free.add(b);
    this.releasedNow.add(b);
  }

  /** The current op is done: what it gave back becomes `recent` for the next. */
  endOp(): void {
    this.recent = this.releasedNow;
    this.releasedNow = new Set();
  }

  /** Frees every buffer: a new phase starts with the whole pool. */
  reset(): void {
    for (const b of this.all) this.free.add(b);
    this.recent = new Set();
    this.releasedNow = new Set();
  }
}
