"""The timing both CPU peers of `npm run bench -- --train` share (torch_peer.py, hf_peer.py)."""

import time


def time_steps(step, n):
    """Runs `step` once untimed (allocations, caches), then n times; returns each timed step's ms."""
    step()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1000)
    return ms
