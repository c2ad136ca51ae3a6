"""Peak memory of a piece of work, measured by torch - independent of any formula.

CUDA: `torch.cuda.max_memory_allocated` (bytes the caching allocator handed out to tensors, peak).
CPU: the peak of live tensor bytes on torch's memory-profiler timeline (`torch.profiler.profile(
profile_memory=True, record_shapes=True, with_stack=True)` + `export_memory_timeline`), which tracks every
tensor storage created and freed during `fn` plus the ones that existed before and were used in it
(parameters, optimizer states). RSS is no good on CPU: glibc keeps freed memory (measured here: peak RSS 1.7-2x the live tensors).
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable


def peak_tensor_bytes(fn: Callable[[], Any], device: str = "cpu") -> tuple[Any, int]:
    """Run `fn()`; return (its result, peak bytes of live tensors on `device` while it ran)."""
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        result = fn()
        torch.cuda.synchronize()
        return result, int(torch.cuda.max_memory_allocated())
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        result = fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_memory_timeline(path, device="cpu")
        with open(path) as f:
            _times, sizes = json.load(f)
    finally:
        os.unlink(path)
    return result, int(max((sum(s) for s in sizes), default=0))
