// Token embedding lookup. Shapes: ids [N] (Int32Array), table [V,D] → out [N,D].
// Backward keeps the ids only: dTable[ids[i]] += dOut[i] (scatter-add; repeated ids accumulate),
// except that the row of `paddingIdx`, when given, gets no gradient (torch's padding_idx).

import { expectLength, like, type Floats } from './floats.js';

function checkId(id: number, V: number): void {
  if (!(id >= 0 && id < V)) throw new Error(`reference: token id ${id} outside [0, ${V})`);
}

export function embeddingForward<T extends Floats>(ids: Int32Array, table: T, V: number, D: number): T {
  expectLength('embedding table', table, V * D);
  const out = like(table, ids.length * D);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    checkId(id, V);
    for (let d = 0; d < D; d++) out[i * D + d] = table[id * D + d]!;
  }
  return out;
}

export function embeddingBackward<T extends Floats>(ids: Int32Array, dOut: T, V: number, D: number, paddingIdx?: number): T {
  expectLength('embedding dOut', dOut, ids.length * D);
  const dTable = like(dOut, V * D);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    checkId(id, V);
    if (id === paddingIdx) continue;
    for (let d = 0; d < D; d++) dTable[id * D + d] = dTable[id * D + d]! + dOut[i * D + d]!;
  }
  return dTable;
}
