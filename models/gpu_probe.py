"""Measured GPU memory through NVML (nvidia-ml-py), when an NVIDIA GPU is visible.

Without a GPU (or without the driver) every call answers None and the slot budgets on its
estimates alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuMemory:
    total: int
    free: int
    used: int


class GpuProbe:
    def __init__(self, index: int = 0) -> None:
        self._nvml: Any = None
        self._handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml = pynvml
            log.info("NVML: measuring %s", pynvml.nvmlDeviceGetName(self._handle))
        except Exception:  # no driver, no GPU, or no package: estimates only
            self._handle = None

    @property
    def available(self) -> bool:
        return self._handle is not None

    def memory(self) -> GpuMemory | None:
        if self._handle is None:
            return None
        try:
            info = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
        except Exception:
            return None
        return GpuMemory(total=int(info.total), free=int(info.free), used=int(info.used))
