"""Work on a toy base already built: its VAE decoder trained on, or its quality measured again.

Both keep the base's other models byte for byte and rewrite the folder atomically; ``flows.base``
runs them (``--decoder-only``, ``--measure-only``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from tasks.base.build import CPU, train_vae_decoder
from tasks.base.config import BaseConfig
from tasks.base.pools import pools, posed_eval_pool, upright_eval_pool
from tasks.base.quality_run import measure_quality
from tasks.base.report import readme, size_mb
from tasks.common.device import resolve_device
from tasks.common.io import atomic_dir, write_json


def train_saved_decoder(cfg: BaseConfig) -> dict:
    """``train_vae_decoder`` alone, on the base already in ``cfg.out_dir`` (its other models kept):
    the last training step of a full build, for a base built before it existed. Rewrites
    ``cfg.out_dir`` atomically and ``cfg.metrics`` (quality measured again)."""
    if cfg.vae.decoder_train is None:
        raise ValueError("base.vae.decoder_train is not set: there is no decoder training to run")
    metrics = Path(cfg.metrics)
    if not (Path(cfg.out_dir) / "vae").is_dir() or not metrics.is_file():
        raise FileNotFoundError(f"no built base in {cfg.out_dir} (with {metrics}): run the base stage first")
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device, "base.device")
    start = time.time()
    report = json.loads(metrics.read_text())
    pool, _, eval_pool, _ = pools(cfg)
    saved = AutoencoderKL.from_pretrained(Path(cfg.out_dir) / "vae", dtype=torch.float32)
    # built from its config: a loaded model writes the folder it came from into its config.json
    vae = AutoencoderKL.from_config({k: v for k, v in saved.config.items() if k != "_name_or_path"})
    vae.load_state_dict(saved.state_dict())
    vae, report["vae_decoder"] = train_vae_decoder(cfg, vae, pool, device)
    vae.to(CPU)
    with atomic_dir(cfg.out_dir) as out:
        shutil.copytree(cfg.out_dir, out, dirs_exist_ok=True)
        shutil.rmtree(out / "vae")
        vae.to(torch.float16).save_pretrained(out / "vae")
        shutil.copy(Path(cfg.logs_dir) / "vae_decoder.csv", out / "logs" / "vae_decoder.csv")
        report["quality"] = measure_quality(out, eval_pool, cfg, posed_eval_pool(cfg))
        report["total_mb"] = size_mb(out)
        # what a full build with this step takes: the build's time plus this step's
        report["wall_minutes"] = round(report["wall_minutes"] + (time.time() - start) / 60, 1)
        (out / "README.md").write_text(readme(report, cfg.text.max_length))
    write_json(cfg.metrics, report)
    return report


def measure_saved_base(cfg: BaseConfig) -> dict:
    """Measure the base already in ``cfg.out_dir`` again, its models kept byte for byte: the quality
    figures added after it was built join ``cfg.metrics`` (the others come out as they were: the
    measurement is seeded). Rewrites the folder's measured files atomically."""
    metrics = Path(cfg.metrics)
    if not (Path(cfg.out_dir) / "unet").is_dir() or not metrics.is_file():
        raise FileNotFoundError(f"no built base in {cfg.out_dir} (with {metrics}): run the base stage first")
    torch.set_num_threads(cfg.threads)
    report = json.loads(metrics.read_text())
    with atomic_dir(cfg.out_dir) as out:
        shutil.copytree(cfg.out_dir, out, dirs_exist_ok=True)
        report["quality"] = measure_quality(out, upright_eval_pool(cfg), cfg, posed_eval_pool(cfg))
        (out / "README.md").write_text(readme(report, cfg.text.max_length))
    write_json(cfg.metrics, report)
    return report
