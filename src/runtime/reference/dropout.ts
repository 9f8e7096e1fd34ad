// Dropout with a mask regenerated from (seed, stream, element index) by rng.ts, as torch's
// inverted dropout: kept elements are scaled by 1/(1-p), dropped ones are 0; p = 1 drops all.
// Shapes: any; the counter is the flat element index. Backward keeps nothing: it rebuilds the
// same mask from the seed.

import { like, type Floats } from './floats.js';
import { dropThreshold, keepAt, streamKey } from './rng.js';

export interface DropoutSpec {
  p: number;
  seed: number;
  stream: number;
}

/** 1 where element i is kept, 0 where dropped. */
export function dropoutMask(n: number, spec: DropoutSpec): Uint8Array {
  const mask = new Uint8Array(n);
  const threshold = dropThreshold(spec.p);
  const key = streamKey(spec.seed, spec.stream);
  for (let i = 0; i < n; i++) mask[i] = keepAt(key, i, threshold) ? 1 : 0;
  return mask;
}

function applyMask<T extends Floats>(x: T, spec: DropoutSpec): T {
  const out = like(x, x.length);
  if (spec.p >= 1) {
    dropThreshold(spec.p);
    return out;
  }
  const mask = dropoutMask(x.length, spec);
  const scale = 1 / (1 - spec.p);
  for (let i = 0; i < x.length; i++) out[i] = mask[i] ? x[i]! * scale : 0;
  return out;
}

export function dropoutForward<T extends Floats>(x: T, spec: DropoutSpec): T {
  return applyMask(x, spec);
}

export function dropoutBackward<T extends Floats>(dy: T, spec: DropoutSpec): T {
  return applyMask(dy, spec);
}
