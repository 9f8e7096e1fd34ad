// Reference kernels of the decode-step ops (src/ir/ops-decode.ts). The cache write returns a new
// cache (the device writes in place); the one-query attention is the full attention function on
// the cache rows 0..pos, so a decode step computes exactly what the forward graph does at that
// position.
import { attentionForward } from '../attention.js';
import { asFloats, asInts, numelOf, zeros } from './tensor.js';
import { batchedPrefix, type Kernel } from './forward.js';

function position(t: Parameters<typeof asInts>[0], L: number, what: string): number {
  const pos = asInts(t)[0]!;
  if (!(pos >= 0 && pos < L)) throw new Error(`reference executor: ${what} position ${pos} outside the cache's ${L} rows`);
  return pos;
}

export const DECODE_KERNELS: Readonly<Record<string, Kernel>> = {
  kv_cache_write: ([cache, x, pos], _a, _o, k) => {
    const [L, H, hd] = cache!.shape as [number, number, number];
    const p = position(pos!, L, 'kv_cache_write');
    const src = asFloats(cache!);
    const out = zeros(k.f64, numelOf(cache!.shape));
    out.set(src);
    out.set(asFloats(x!).subarray(0, H * hd), p * H * hd);
    return [out];
  },

  attention_decode: ([q, kc, vc, pos, pk, pv], a, _o, k) => {
    const [, , Hq, hd] = q!.shape as [number, number, number, number];
    const [L, Hkv] = kc!.shape as [number, number];
    const S = position(pos!, L, 'attention_decode') + 1;
    const P = pk ? pk.shape[pk.shape.length - 3]! : 0;
    const prefixK = batchedPrefix(pk, 1, k.f64);
    const prefixV = batchedPrefix(pv, 1, k.f64);
    const rows = S * Hkv * hd;
    const spec = { B: 1, T: 1, S, Hq, Hkv, hd, P, causal: true, scale: a['scale'] as number };
    const keys = asFloats(kc!).subarray(0, rows);
    const values = asFloats(vc!).subarray(0, rows);
    return [attentionForward({ q: asFloats(q!), k: keys, v: values, ...(prefixK && prefixV ? { prefixK, prefixV } : {}) }, spec).out];
  },
};
