"""Resident memory of this process, from /proc (Linux) or `resource`.

Shared by benchmarks/memory.py and benchmarks/soak.py.
"""

import resource
import sys


def _status_kib(field):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib():
    """Current resident set size in MiB (None where /proc is missing)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024.0


def peak_rss_mib():
    """Peak resident set size of this process so far, in MiB (ru_maxrss:
    KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
