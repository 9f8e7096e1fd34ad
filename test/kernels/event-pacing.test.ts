// The pacing of Dawn's waits on CPU adapters (src/runtime/device/event-pacing.ts): which callbacks
// it delays and how it undoes itself, then the behaviour it exists for, measured on llvmpipe:
// while a long submission is pending, Node's main thread sleeps instead of spinning a core.

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { KernelSpec } from "../../src/codegen/wgsl/index.js";
import { openDevice, paceDawnEvents, pacingActive, PACING_SPIN_MS, type Device } from "../../src/runtime/device/index.js";

// A bound function prints as native code, as dawn.node's callbacks do.
const nativeLike = (f: () => void): (() => void) => f.bind(null);
const kind = (h: unknown): string => (h as object).constructor.name;

afterEach(() => {
  expect(pacingActive()).toBe(false);
});

/**
 * A wait as dawn.node runs one: a native callback that queues itself again until `ms` have
 * passed. Resolves with the kinds of handle setImmediate returned for each queueing and how long
 * the wait took from its first queueing to its last callback.
 */
function dawnLikeWait(ms: number): Promise<{ kinds: string[]; took: number }> {
  return new Promise((resolve) => {
    const kinds: string[] = [];
    const t0 = performance.now();
    const poll = nativeLike(() => {
      const now = performance.now();
      if (now - t0 >= ms) resolve({ kinds, took: now - t0 });
      else kinds.push(kind(setImmediate(poll)));
    });
    kinds.push(kind(setImmediate(poll)));
  });
}

describe("paceDawnEvents", () => {
  it("runs a long wait's first milliseconds through setImmediate and the rest from a timer; a wait after a long one starts on the timer, one after a short one spins; JavaScript callbacks keep setImmediate", async () => {
    const orig = globalThis.setImmediate;
    const release = paceDawnEvents();
    try {
      expect(globalThis.setImmediate).not.toBe(orig);
      const { kinds: long } = await dawnLikeWait(PACING_SPIN_MS + 15);
      const firstTimer = long.indexOf("Timeout");
      expect(firstTimer).toBeGreaterThan(0);
      expect(long.slice(0, firstTimer).every((k) => k === "Immediate")).toBe(true);
      expect(long.slice(firstTimer).every((k) => k === "Timeout")).toBe(true);
      // Each spins at most PACING_SPIN_MS, and the timer runs about once a millisecond after that.
      expect(long.length - firstTimer).toBeLessThan(20);
      // The next wait does not spin at all: a long wait's spin is a core taken from the device.
      let last = await dawnLikeWait(PACING_SPIN_MS / 4);
      expect(last.kinds.every((k) => k === "Timeout")).toBe(true);
      // From then on each wait spins exactly when the one before ended within PACING_SPIN_MS
      // (back-to-back short waits, a decoded token each, keep their latency).
      let spun = 0;
      for (let i = 0; i < 6; i++) {
        const next = await dawnLikeWait(PACING_SPIN_MS / 4);
        expect(next.kinds[0]).toBe(last.took < PACING_SPIN_MS ? "Immediate" : "Timeout");
        if (next.kinds[0] === "Immediate") spun++;
        last = next;
      }
      expect(spun).toBeGreaterThan(0);
      const again = await dawnLikeWait(PACING_SPIN_MS + 5);
      expect(again.kinds[0]).toBe(last.took < PACING_SPIN_MS ? "Immediate" : "Timeout");
      expect(again.kinds.includes("Timeout")).toBe(true);
      expect((await dawnLikeWait(PACING_SPIN_MS / 4)).kinds[0]).toBe("Timeout");
      let ran = false;
      expect(kind(setImmediate(() => void (ran = true)))).toBe("Immediate");
      await new Promise((r) => setTimeout(r, 5));
      expect(ran).toBe(true);
    } finally {
      release();
    }
    expect(globalThis.setImmediate).toBe(orig);
  });

  it("lets clearImmediate cancel a paced callback, and stays until its last holder releases it", async () => {
    const orig = { set: globalThis.setImmediate, clear: globalThis.clearImmediate };
    const a = paceDawnEvents();
    const b = paceDawnEvents();
    let cleared = false;
    let ranAfterClear = false;
    await new Promise<void>((resolve) => {
      const t0 = performance.now();
      const poll = nativeLike(() => {
        if (cleared) {
          ranAfterClear = true;
          return;
        }
        const h = setImmediate(poll);
        if (kind(h) === "Timeout") {
          clearImmediate(h);
          cleared = true;
          setTimeout(resolve, 10);
        } else if (performance.now() - t0 > 1000) resolve();
      });
      setImmediate(poll);
    });
    expect(cleared).toBe(true);
    expect(ranAfterClear).toBe(false);
    a();
    a();
    expect(pacingActive()).toBe(true);
    b();
    expect(globalThis.setImmediate).toBe(orig.set);
    expect(globalThis.clearImmediate).toBe(orig.clear);
  });
});

/** A kernel of dependent multiply-adds, long enough on llvmpipe to wait on. */
const BUSY: KernelSpec = {
  label: "busy",
  wgsl: `@group(0) @binding(0) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var a = f32(g.x) * 1e-6;
  for (var i = 0u; i < 20000u; i++) { a = fma(a, 0.999, 0.001); }
  c[g.x] = a;
}`,
  entryPoint: "main",
  workgroupSize: [64, 1, 1],
  dispatch: [64, 1, 1],
  bindings: [{ binding: 0, name: "c", access: "read_write", type: "array<f32>", elem: "f32" }],
  flops: 64 * 64 * 20000 * 2,
};

/** Clock ticks Linux has charged to this process's main thread. */
function mainThreadTicks(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime
}

/** Main-thread CPU over wall time while the device runs at least ~0.4 s of submitted work. */
async function mainThreadShareWhileWaiting(dev: Device): Promise<number> {
  await dev.prepare(BUSY);
  const bufs = { c: dev.bufferFrom(new Float32Array(64 * 64)) };
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    const k0 = mainThreadTicks();
    const rec = dev.recorder("busy");
    for (let i = 0; i < reps; i++) rec.dispatch(BUSY, bufs);
    rec.submit();
    await dev.flush();
    const wall = performance.now() - t0;
    const ticks = mainThreadTicks() - k0;
    if (wall >= 400) {
      bufs.c.destroy();
      return (ticks * 10) / wall; // USER_HZ is 100 on Linux
    }
    reps = Math.ceil((reps * 500) / Math.max(wall, 1));
  }
}

describe("waiting on llvmpipe", () => {
  it("leaves the main thread mostly idle while a long submission runs, and busy with PEFC_DAWN_SPIN=1", async () => {
    const paced = await openDevice();
    expect(paced.info.adapter.isCpu).toBe(true);
    expect(pacingActive()).toBe(true);
    const share = await mainThreadShareWhileWaiting(paced);
    paced.destroy();
    expect(pacingActive()).toBe(false);

    process.env["PEFC_DAWN_SPIN"] = "1";
    let spinning: Device;
    try {
      spinning = await openDevice();
    } finally {
      delete process.env["PEFC_DAWN_SPIN"];
    }
    expect(pacingActive()).toBe(false);
    const spun = await mainThreadShareWhileWaiting(spinning);
    spinning.destroy();

    expect(share).toBeLessThan(0.3);
    // Spinning, the main thread takes what the scheduler gives it: most of a core when the machine is quiet.
    expect(spun).toBeGreaterThan(Math.max(0.4, 4 * share));
  }, 60_000);
});
