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
  readonly all: BufferDecl[] = [];

  constructor(private readonly create: (bytes: number) => BufferDecl) {}

  take(bytes: number): BufferDecl {
    const need = alignUp(Math.max(bytes, 4), BINDING_ALIGN);
    let best: BufferDecl | undefined;
    for (const b of this.free) if (b.bytes >= need && (!best || b.bytes < best.bytes)) best = b;
    if (!best) {
      for (const b of this.free) if (!best || b.bytes > best.bytes) best = b;
      if (best) best.bytes = need;
    }
    if (!best) {
      best = this.create(need);
      this.all.push(best);
    }
    this.free.delete(best);
    return best;
  }

  release(b: BufferDecl): void {
    if (this.free.has(b)) throw new Error(`program: pooled buffer ${b.label} released twice`);
    this.free.add(b);
  }

  /** Frees every buffer: a new phase starts with the whole pool. */
  reset(): void {
    for (const b of this.all) this.free.add(b);
  }
}
