"""The cost of one video, as the comparisons measure it: seconds, and peak memory while it is made (CUDA's
allocator peak, or the process's resident set sampled on CPU)."""

from __future__ import annotations

import statistics
import threading
import time
from contextlib import contextmanager

import torch


class PeakMemory:
    """Peak memory while a block runs: CUDA's allocator peak, or the sampled resident set on CPU (MB)."""

    def __init__(self, period_s: float = 0.02):
        self.period_s, self.peak_mb = period_s, 0.0

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    @contextmanager
    def measure(self):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            yield
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        stop, peak = threading.Event(), [self.rss_mb()]

        def sample():
            while not stop.wait(self.period_s):
                peak[0] = max(peak[0], self.rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join()
            self.peak_mb = max(peak[0], self.rss_mb())


class Costs:
    def __init__(self):
        self.seconds: list[float] = []
        self.peak_mb: list[float] = []

    @contextmanager
    def video(self):
        memory, t0 = PeakMemory(), time.perf_counter()
        with memory.measure():
            yield
        self.seconds.append(time.perf_counter() - t0)
        self.peak_mb.append(memory.peak_mb)

    def summary(self) -> dict:
        return {
            "seconds_per_video": round(statistics.median(self.seconds), 2),
            "peak_memory_mb": round(max(self.peak_mb), 1),
            "n_generated": len(self.seconds),
        }
