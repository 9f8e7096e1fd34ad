"""The timing both CPU peers of `npm run bench -- --train` share (torch_peer.py, hf_peer.py)."""

import time


def time_steps(step, n):
    """Runs `step` once untimed (allocations, caches), then n times.

    Returns each timed step's wall ms and the process's CPU ms over it (all threads), so a step
    slowed by a busy host shows as fewer cores used rather than as more work."""
    step()
    ms = []
    cpu_ms = []
    for _ in range(n):
        c0 = time.process_time()
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1000)
        cpu_ms.append((time.process_time() - c0) * 1000)
    return ms, cpu_ms
