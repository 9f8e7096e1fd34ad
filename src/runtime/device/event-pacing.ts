// How Dawn's pending work is waited on while a CPU adapter is open.
//
// dawn.node resolves its promises (mapAsync, onSubmittedWorkDone, createComputePipelineAsync) by
// calling the instance's ProcessEvents from a native callback that it queues with
// globalThis.setImmediate, and queues again for as long as anything is pending. Waiting for a long
// submission therefore keeps Node's main thread busy at a full core. On a GPU that is a host core
// spent; on a CPU adapter (llvmpipe) it is a core taken from the device itself, whose worker
// threads then share what is left: on 2 cores, llvmpipe's multiply-add rate went from 58 to 114
// GFLOP/s with the waits paced, a stories260K step from 115 to 77 ms and a GPT-2 small step from
// 2.6 to 1.4 s.
//
// Paced, Dawn's re-queued callbacks still run through setImmediate for the first 2 ms of a wait,
// so an operation that finishes soon (a decoded token) keeps its latency; after that they run from
// a 1 ms timer, and the main thread sleeps in the event loop between them. A wait begins when a
// callback is queued from outside Dawn's own (Dawn had nothing pending) and ends when one of its
// callbacks runs without queueing again. A wait that outlasted its spin starts the next one on the
// timer at once: waits come in runs of one kind (training steps, decoded tokens), and the 2 ms a
// long one spends spinning are taken from the device's threads. On 2 cores that was 2 ms of CPU
// and 3-4 ms of wall time of a 57-60 ms stories260K step, alternated. After a short wait the next one
// spins again, so back-to-back short waits keep their latency; the first short wait after a long
// one pays up to a timer tick. Only native callbacks are paced (Dawn's are native;
// JavaScript callbacks keep setImmediate), only while a CPU-adapter device is open, and
// PEFC_DAWN_SPIN=1 turns pacing off.

/** How long (ms) a wait's callbacks still go through setImmediate before the timer takes over. */
export const PACING_SPIN_MS = 2;

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

interface Installed {
  users: number;
  setImmediate: typeof globalThis.setImmediate;
  clearImmediate: typeof globalThis.clearImmediate;
}

let installed: Installed | undefined;

export function pacingDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env["PEFC_DAWN_SPIN"] === "1";
}

/** Whether Dawn's waits are paced now (some CPU-adapter device holds pacing). */
export function pacingActive(): boolean {
  return installed !== undefined;
}

/**
 * Paces Dawn's event processing until the returned release is called (reference-counted: the
 * original setImmediate and clearImmediate come back when the last holder releases).
 */
export function paceDawnEvents(): () => void {
  if (!installed) installed = install();
  installed.users++;
  let released = false;
  return () => {
    if (released || !installed) return;
    released = true;
    if (--installed.users === 0) {
      globalThis.setImmediate = installed.setImmediate;
      globalThis.clearImmediate = installed.clearImmediate;
      installed = undefined;
    }
  };
}

function install(): Installed {
  const orig = { setImmediate: globalThis.setImmediate, clearImmediate: globalThis.clearImmediate };
  const timers = new WeakSet<object>();
  // A callback queued while one of Dawn's runs is Dawn queueing itself again: the same wait goes
  // on. One queued from anywhere else starts a wait (Dawn had nothing pending).
  let inCallback = false;
  let waitStart = 0;
  // Whether waits spin at their start (the last one ended within its spin), and whether the
  // running callback queued itself again (its wait goes on).
  let spins = true;
  let requeued = false;
  const paced = function (this: unknown, cb: (...a: unknown[]) => void, ...args: unknown[]) {
    if (typeof cb !== "function" || !NATIVE.test(Function.prototype.toString.call(cb))) return orig.setImmediate(cb, ...args);
    const now = performance.now();
    if (inCallback) requeued = true;
    else waitStart = now;
    const run = () => {
      inCallback = true;
      requeued = false;
      try {
        cb(...args);
      } finally {
        inCallback = false;
        if (!requeued) spins = performance.now() - waitStart < PACING_SPIN_MS;
      }
    };
    if (spins && now - waitStart < PACING_SPIN_MS) return orig.setImmediate(run);
    const t = setTimeout(run, 1);
    timers.add(t);
    return t;
  } as typeof globalThis.setImmediate;
  const clear = ((h: unknown) => {
    if (h !== null && typeof h === "object" && timers.has(h)) clearTimeout(h as NodeJS.Timeout);
    else orig.clearImmediate(h as NodeJS.Immediate);
  }) as typeof globalThis.clearImmediate;
  // util.promisify(setImmediate) and the like keep working.
  for (const k of Reflect.ownKeys(orig.setImmediate)) if (typeof k === "symbol" || k === "__promisify__") Object.defineProperty(paced, k, Object.getOwnPropertyDescriptor(orig.setImmediate, k)!);
  globalThis.setImmediate = paced;
  globalThis.clearImmediate = clear;
  return { users: 0, ...orig };
}
