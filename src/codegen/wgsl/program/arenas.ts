/**
 * Packing many small persistent tensors into few buffers ("arenas"): trainable parameters, their
 * summed and per-micro-batch gradients, and each optimizer-state slot use the same order and
 * offsets, so a whole arena is copied, summed or updated by one command. Every tensor starts on a
 * binding-aligned offset; an arena never exceeds the largest storage binding, so it can be bound
 * whole. A single tensor larger than that is refused (split.ts splits frozen weights before this).
 */
import { DeviceLimitError } from "../caps.js";
import { alignUp, BINDING_ALIGN, type BufferDecl, type BufferRole, type Slice } from "./types.js";

export interface ArenaItem {
  name: string;
  bytes: number;
}

export interface ArenaLayout {
  /** Per arena: its byte length and the items in it. */
  arenas: { bytes: number; items: string[] }[];
  at: Map<string, { arena: number; offset: number; bytes: number }>;
}

export function layoutArenas(items: readonly ArenaItem[], maxBinding: number): ArenaLayout {
  const arenas: ArenaLayout["arenas"] = [];
  const at: ArenaLayout["at"] = new Map();
  let cur: { bytes: number; items: string[] } | undefined;
  for (const it of items) {
    if (it.bytes > maxBinding)
      throw new DeviceLimitError(`tensor ${it.name} takes ${it.bytes} bytes, more than the device's largest storage binding (${maxBinding} bytes); a trained tensor cannot be split across bindings`, it.name);
    const offset = cur ? alignUp(cur.bytes, BINDING_ALIGN) : 0;
    if (!cur || offset + it.bytes > maxBinding) {
      cur = { bytes: 0, items: [] };
      arenas.push(cur);
    }
    const o = alignUp(cur.bytes, BINDING_ALIGN);
    at.set(it.name, { arena: arenas.length - 1, offset: o, bytes: it.bytes });
    cur.items.push(it.name);
    cur.bytes = o + it.bytes;
  }
  return { arenas, at };
}

/** Buffers for one role following `layout`; returns each item's slice and the arena buffers. */
export function placeArenas(
  layout: ArenaLayout,
  role: BufferRole,
  label: string,
  create: (bytes: number, role: BufferRole, label: string) => BufferDecl,
): { slices: Map<string, Slice>; buffers: BufferDecl[] } {
  const buffers = layout.arenas.map((a, i) => create(Math.max(4, alignUp(a.bytes, 4)), role, `${label}#${i}`));
  const slices = new Map<string, Slice>();
  for (const [name, p] of layout.at) slices.set(name, { buffer: buffers[p.arena]!.id, offset: p.offset, bytes: p.bytes });
  return { slices, buffers };
}
