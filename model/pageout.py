"""Give an idle network's weights back to the kernel, on the CPU.

diffusers and transformers load a safetensors file by mapping it into memory: on the CPU the weights
are views of that mapping, a page is read from the file when first touched and counts in the
process's resident memory from then on. A network used once per video (the text encoder, frame 1's
ControlNet) therefore stays resident while frames 2..n run, beside everything they need.

``page_out`` asks the kernel to reclaim those pages now (``madvise(MADV_PAGEOUT)``, Linux 5.4 and
later); the network's next use reads them from the file again. Nothing can be lost: a page the process
wrote to (a weight changed in place) is no longer the file's, and the kernel only swaps such a page,
never drops it. Weights that are not mapped from a file (moved with ``.to``, trained, built in
memory, on a GPU) are left alone, and so is every other system: there ``page_out`` does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import sys

import torch

log = logging.getLogger(__name__)

MADV_PAGEOUT = 21  # <linux/mman.h>
_PAGE = mmap.PAGESIZE
_unsupported: list[str] = []  # why page_out cannot work here, once known (logged once)


def file_mapped_ranges() -> list[tuple[int, int]]:
    """The address ranges of this process mapped from files (``/proc/self/maps`` entries with an inode)."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[4] != "0":
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((lo, hi))
    return ranges


def weight_ranges(*modules: torch.nn.Module | None) -> list[tuple[int, int]]:
    """The whole pages the CPU parameters and buffers of ``modules`` lie on: their storages, touching
    ones merged (a weights file lays its tensors end to end), each cut to the pages wholly inside it."""
    spans = set()
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()) if module is not None else ():
            if tensor.device.type == "cpu":
                storage = tensor.untyped_storage()
                spans.add((storage.data_ptr(), storage.data_ptr() + storage.nbytes()))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pages = [(-(-start // _PAGE) * _PAGE, end // _PAGE * _PAGE) for start, end in merged]
    return [(start, end) for start, end in pages if end > start]


def page_out(*modules: torch.nn.Module | None) -> int:
    """Ask the kernel to reclaim the pages of ``modules``' weights that are mapped from their files.

    Returns the bytes advised (0 where none are file-mapped, or off Linux). The weights stay valid:
    the next read of a page brings it back from the file.
    """
    if _unsupported or not sys.platform.startswith("linux"):
        return 0
    files = file_mapped_ranges()
    advised = 0
    for start, end in weight_ranges(*modules):
        for lo, hi in files:  # only what lies in a file mapping: anonymous pages would be swapped
            lo, hi = max(lo, start), min(hi, end)
            if hi > lo:
                if _madvise(lo, hi - lo) != 0:
                    return advised
                advised += hi - lo
    return advised


def _madvise(address: int, length: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.madvise(ctypes.c_void_p(address), ctypes.c_size_t(length), ctypes.c_int(MADV_PAGEOUT)) == 0:
        return 0
    reason = f"madvise(MADV_PAGEOUT) failed: errno {ctypes.get_errno()} (Linux 5.4 or later is needed)"
    _unsupported.append(reason)
    log.info("idle weights stay resident: %s", reason)
    return -1
