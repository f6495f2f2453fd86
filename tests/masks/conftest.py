"""Fixtures for the masks stage: clip folders as ingest writes them, toy-world clips, a tiny SAM."""

from pathlib import Path

import pytest
import torch
from masks_helpers import ClipsDir

from tasks.ingest.stage import IngestConfig, ingest
from tasks.toyworld.stage import ToyWorldConfig, render_toyworld


@pytest.fixture
def clips(tmp_path) -> ClipsDir:
    return ClipsDir(tmp_path)


@pytest.fixture(scope="session")
def toy_clips(tmp_path_factory) -> Path:
    """Two real toy-world clips (rendered, H.264-encoded, ingested): 64x64, 16 frames, with truth."""
    root = tmp_path_factory.mktemp("toy") / "data"
    render_toyworld(ToyWorldConfig(seed=3, n_train=2, n_heldout=0, out_dir=str(root / "raw" / "toy")))
    ingest(
        IngestConfig(
            manifest=str(root / "raw" / "toy" / "manifest.yaml"),
            input_dir=str(root / "raw" / "toy"),
            data_root=str(root),
            out_dir=str(root / "clips"),
        )
    )
    return root / "clips"


@pytest.fixture(scope="session")
def tiny_sam_checkpoint(tmp_path_factory) -> Path:
    """A tiny SAM's random weights saved the way SAM checkpoints are: a plain state dict."""
    from tasks.segment.sam import build_tiny_sam

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / "sam_tiny.pth"
    torch.save(build_tiny_sam().state_dict(), path)
    return path
