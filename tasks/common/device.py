"""Which torch device a stage runs on: its ``device`` setting (auto | cpu | cuda)."""

from __future__ import annotations

import torch


def resolve_device(setting: str, key: str) -> torch.device:
    """``auto``: CUDA when present, else CPU. ``cuda`` without a GPU is an error naming ``key`` (the
    params.yaml setting), not a silent fall back to a run a hundred times slower."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{key}=cuda but no CUDA device is available")
    return torch.device("cuda" if setting != "cpu" and torch.cuda.is_available() else "cpu")
