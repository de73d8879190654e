"""CPU feature detection used to pick the fastest accurate precision."""
from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """Flags from /proc/cpuinfo (empty on systems without it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_native_bf16() -> bool:
    """True where matmuls in bf16 run on hardware (AMX tiles or AVX512-BF16).

    Without it torch emulates bf16 and is slower than fp32, so bf16 is only a fast
    path on such CPUs (measured in benchmarks/encode_throughput.py).
    """
    flags = cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags)
