"""Train the toy world's base models from scratch, save them as an SD1.4-style folder, measure them.

Read top to bottom: data, tokenizer, VAE, CLIP, UNet + text encoder, ControlNet, the VAE's decoder
again (encoder frozen), save, quality. Training runs on ``base.device`` (CUDA when present); data
and noise are drawn on the CPU either way, and the models are saved and measured on the CPU.
Output (``cfg.out_dir``, written atomically; float16 safetensors)::

    model_index.json  vae/  text_encoder/  tokenizer/  unet/  scheduler/   (StableDiffusionPipeline)
    controlnet/       ControlNetModel (mask -> frame)
    clip/             open_clip model (evaluation only), see tasks.common.toy_clip.load_toy_clip
    samples.png       text-to-image and ControlNet samples on held-out prompts
    logs/<model>.csv  training loss per step
    README.md         the parts and how to load them
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionPipeline

from model.parts_pipeline import pipeline_from_parts
from tasks.base import clip as toy_clip
from tasks.base.config import BaseConfig, TrainSchedule
from tasks.base.controlnet import build_controlnet, controlnet_loss
from tasks.base.data import BatchSampler, FramePool
from tasks.base.pools import multi_object_frames, pools, posed_eval_pool, toy_tokenizer
from tasks.base.quality_run import measure_quality
from tasks.base.report import readme, size_mb
from tasks.base.text import build_text_encoder, tokenize
from tasks.base.train_loop import train
from tasks.base.unet import build_scheduler, build_unet, drop_prompts, t2i_loss
from tasks.base.vae import build_vae, latent_scaling_factor, vae_loss
from tasks.common.device import resolve_device
from tasks.common.io import atomic_dir, write_json

CL = torch.channels_last  # mkldnn convolutions run ~3x faster in channels-last on this CPU
CPU = torch.device("cpu")


def _train(name: str, params, loss_fn, batches, sched: TrainSchedule, logs_dir: str) -> dict:
    return train(
        name,
        list(params),
        loss_fn,
        batches,
        steps=sched.steps,
        lr=sched.lr,
        min_lr=sched.min_lr,
        warmup=sched.warmup,
        ema_decay=sched.ema_decay,
        log_path=Path(logs_dir) / f"{name}.csv",
        max_seconds=sched.max_minutes * 60 if sched.max_minutes else None,
    )


def _on(device: torch.device, batches):
    """``batches`` with every tensor moved to ``device``. Batches are drawn on the CPU from CPU
    generators, so a seed gives the same data on any device."""
    for batch in batches:
        yield {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def _random_crops(batch: dict, crop: int, rng: np.random.Generator) -> dict:
    """The same random ``crop`` x ``crop`` window of each frame's pixels and mask."""
    pixels, masks = batch["pixels"], batch["masks"]
    size = pixels.shape[-1]
    if crop < size:
        corners = rng.integers(0, size - crop + 1, (len(pixels), 2))
        pixels = torch.stack([p[:, y : y + crop, x : x + crop] for p, (y, x) in zip(pixels, corners)])
        masks = torch.stack([m[:, y : y + crop, x : x + crop] for m, (y, x) in zip(masks, corners)])
    return {"pixels": pixels.contiguous(memory_format=CL), "masks": masks}


def train_vae(cfg: BaseConfig, pool: FramePool, device: torch.device = CPU) -> tuple[torch.nn.Module, dict]:
    c = cfg.vae
    vae = build_vae(tuple(c.channels), c.layers_per_block, c.latent_channels, c.norm_groups, 64, cfg.seed)
    vae = vae.to(device, memory_format=CL).train()
    rng = np.random.default_rng(cfg.seed + 1)
    crops = (_random_crops(b, c.crop, rng) for b in BatchSampler(pool, c.train.batch_size, cfg.seed + 1))
    batches = _on(device, crops)
    report = _train(
        "vae",
        vae.parameters(),
        lambda b: vae_loss(vae, b["pixels"], c.kl_weight, c.edge_weight, b["masks"], c.foreground_weight),
        batches,
        c.train,
        cfg.logs_dir,
    )
    vae.eval()
    sample = pool.batch(np.random.default_rng(cfg.seed + 2).choice(len(pool), min(512, len(pool)), replace=False))[
        "pixels"
    ]
    with torch.no_grad():
        factor = latent_scaling_factor(vae, sample.to(device).contiguous(memory_format=CL))
    vae.register_to_config(scaling_factor=factor)
    report["scaling_factor"] = round(factor, 5)
    return vae, report


def train_vae_decoder(
    cfg: BaseConfig, vae, pool: FramePool, device: torch.device = CPU
) -> tuple[torch.nn.Module, dict]:
    """Train the VAE's decoder on with its encoder frozen (the loss of ``train_vae``); returns the VAE.

    The encoder, and so every latent the UNet and ControlNet learnt from, stays as it was; only
    the way latents become pixels sharpens (SD's ft-MSE VAE was made this way). The VAE is small
    and trained briefly, so its decoder bounds what any generated frame can show: the toy
    segmenter's IoU on its round trips is the ceiling of the evaluate stage's IoU (README).
    With ``vae.decoder_multi_object`` > 0 it also learns from frames of 2-3 objects: the rest of
    the base saw one object per frame, and a decoder that never did reads an object's colour off
    the whole latent (a pink star beside a red square decodes red: docs/experiments.md). Starts
    from the weights as saved (float16) and draws from its own generators, so it gives the same
    decoder inside a full build or run on a saved base (``decoder_only`` in ``flows.base``).
    """
    c = cfg.vae
    vae = vae.to(torch.float16).to(device, torch.float32, memory_format=CL).train()
    vae.encoder.requires_grad_(False).eval()
    vae.quant_conv.requires_grad_(False)
    if c.decoder_multi_object > 0:
        pool = pool + multi_object_frames(cfg, len(pool), c.decoder_multi_object, cfg.seed + 10)
    seed = cfg.seed + 9
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    crop = c.decoder_crop or c.crop
    crops = (_random_crops(b, crop, rng) for b in BatchSampler(pool, c.decoder_train.batch_size, seed))
    batches = _on(device, crops)
    params = [p for p in vae.parameters() if p.requires_grad]
    report = _train(
        "vae_decoder",
        params,
        lambda b: vae_loss(
            vae,
            b["pixels"],
            c.kl_weight,
            c.edge_weight,
            b["masks"],
            c.foreground_weight,
            gen,
            c.decoder_boundary_weight,
        ),
        batches,
        c.decoder_train,
        cfg.logs_dir,
    )
    return vae.eval().requires_grad_(False), report


def train_clip(
    cfg: BaseConfig, pool: FramePool, tokenizer, device: torch.device = CPU
) -> tuple[torch.nn.Module, dict, dict]:
    c = cfg.clip
    model_cfg = toy_clip.clip_model_cfg(
        len(tokenizer),
        cfg.text.max_length,
        64,
        c.embed_dim,
        c.vision_width,
        c.vision_layers,
        c.patch_size,
        c.text_width,
        c.text_layers,
        c.text_heads,
    )
    model, _ = toy_clip.build_clip(model_cfg, cfg.seed + 3)
    model.to(device).train()

    def loss_fn(b):
        return toy_clip.contrastive_loss(
            model, toy_clip.normalise(b["pixels"]), tokenize(tokenizer, b["prompts"]).to(device), b["prompts"]
        )

    batches = _on(device, BatchSampler(pool, c.train.batch_size, cfg.seed + 3))
    report = _train("clip", model.parameters(), loss_fn, batches, c.train, cfg.logs_dir)
    return model.eval(), model_cfg, report


@torch.no_grad()
def encode_pool(vae, pool: FramePool, chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std, float (N, C, h, w), of every pool frame (unscaled), on the VAE's device."""
    means, stds = [], []
    device = vae.device
    for i in range(0, len(pool), chunk):
        px = pool.batch(np.arange(i, min(i + chunk, len(pool))))["pixels"].to(device).contiguous(memory_format=CL)
        dist = vae.encode(px).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    return torch.cat(means).contiguous(), torch.cat(stds).contiguous()


class LatentBatches:
    """Endless batches of scaled, freshly sampled latents + masks + prompts (dropped at ``drop``), on
    the device of ``mean`` and ``std`` (the noise is drawn on the CPU: the same numbers on any device)."""

    def __init__(self, pool: FramePool, mean, std, factor: float, batch_size: int, drop: float, seed: int):
        self.pool, self.mean, self.std, self.factor = pool, mean, std, factor
        self.batch_size, self.drop = batch_size, drop
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        idx = self.rng.integers(0, len(self.pool), self.batch_size)
        device = self.mean.device
        t = torch.from_numpy(idx).to(device)
        eps = torch.randn(self.mean[t].shape, generator=self.gen).to(device)
        latents = (self.mean[t] + self.std[t] * eps) * self.factor
        return {
            "latents": latents,
            "masks": torch.from_numpy(self.pool.masks[idx]).float()[:, None].to(device),
            "prompts": drop_prompts([self.pool.prompts[i] for i in idx], self.drop, self.rng),
        }


def train_unet(cfg: BaseConfig, tokenizer, latents, pool: FramePool, factor: float):
    c, t = cfg.unet, cfg.text
    device = latents[0].device
    text_encoder = build_text_encoder(len(tokenizer), t.max_length, t.width, t.layers, t.heads, cfg.seed + 4).to(
        device
    )
    unet = build_unet(
        cfg.vae.latent_channels,
        latents[0].shape[-1],
        tuple(c.channels),
        c.layers_per_block,
        c.attention_heads,
        t.width,
        c.norm_groups,
        cfg.seed + 5,
    ).to(device, memory_format=CL)
    scheduler = build_scheduler()
    gen = torch.Generator().manual_seed(cfg.seed + 6)
    params = list(unet.parameters())
    if t.trained:
        params += list(text_encoder.parameters())
    else:
        text_encoder.requires_grad_(False)
    unet.train(), text_encoder.train(t.trained)
    batches = LatentBatches(pool, *latents, factor, c.train.batch_size, c.prompt_dropout, cfg.seed + 6)
    report = _train(
        "unet",
        params,
        lambda b: t2i_loss(
            unet,
            text_encoder,
            tokenizer,
            scheduler,
            b["latents"],
            b["prompts"],
            gen,
            b["masks"],
            c.foreground_weight,
            c.noise_offset,
            c.snr_gamma,
        ),
        batches,
        c.train,
        cfg.logs_dir,
    )
    return unet.eval(), text_encoder.eval().requires_grad_(False), scheduler, report


def train_controlnet(cfg: BaseConfig, unet, text_encoder, tokenizer, scheduler, latents, pool, factor):
    c = cfg.controlnet
    controlnet = build_controlnet(unet, c.conditioning_channels, c.embedding_channels, cfg.seed + 7)
    controlnet = controlnet.to(latents[0].device, memory_format=CL).train()
    unet.requires_grad_(False)
    gen = torch.Generator().manual_seed(cfg.seed + 8)
    batches = LatentBatches(pool, *latents, factor, c.train.batch_size, c.prompt_dropout, cfg.seed + 8)

    def loss_fn(b):
        return controlnet_loss(
            controlnet,
            unet,
            text_encoder,
            tokenizer,
            scheduler,
            b["latents"],
            b["masks"],
            b["prompts"],
            gen,
            c.foreground_weight,
            cfg.unet.noise_offset,
        )

    report = _train("controlnet", controlnet.parameters(), loss_fn, batches, c.train, cfg.logs_dir)
    return controlnet.eval(), report


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build_toy_base(cfg: BaseConfig) -> dict:
    """Train, save (atomically, into ``cfg.out_dir``) and measure the toy base models. Returns the
    metrics dict that is also written to ``cfg.metrics``."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device, "base.device")
    start = time.time()
    report: dict = {"world": "toy", "device": device.type}
    pool, clip_pool, eval_pool, held_combos = pools(cfg)
    tokenizer = toy_tokenizer(cfg)

    vae, report["vae"] = train_vae(cfg, pool, device)
    clip_model, clip_cfg, report["clip"] = train_clip(cfg, clip_pool, tokenizer, device)
    latents = encode_pool(vae, pool)
    factor = vae.config.scaling_factor
    unet, text_encoder, scheduler, report["unet"] = train_unet(cfg, tokenizer, latents, pool, factor)
    controlnet, report["controlnet"] = train_controlnet(
        cfg, unet, text_encoder, tokenizer, scheduler, latents, pool, factor
    )
    del latents
    if cfg.vae.decoder_train is not None:
        vae, report["vae_decoder"] = train_vae_decoder(cfg, vae, pool, device)

    for model in (vae, text_encoder, unet, controlnet, clip_model):
        model.to(CPU)
    with atomic_dir(cfg.out_dir) as out:
        pipe = pipeline_from_parts(StableDiffusionPipeline, vae, text_encoder, tokenizer, unet, scheduler)
        pipe.to(torch.float16).save_pretrained(out)
        controlnet.to(torch.float16).save_pretrained(out / "controlnet")
        toy_clip.save_clip(clip_model, clip_cfg, tokenizer, out / "clip")
        # quality is measured on what was saved, loaded the way downstream stages load it
        report["quality"] = measure_quality(out, eval_pool, cfg, posed_eval_pool(cfg))
        sizes = {
            part: {"params": n, "mb": size_mb(out / part)}
            for part, n in [
                ("vae", _n_params(vae)),
                ("text_encoder", _n_params(text_encoder)),
                ("unet", _n_params(unet)),
                ("controlnet", _n_params(controlnet)),
                ("clip", _n_params(clip_model)),
            ]
        }
        report["sizes"] = sizes
        report["total_mb"] = size_mb(out)
        report["heldout_combos"] = [" ".join(c) for c in held_combos]
        report["wall_minutes"] = round((time.time() - start) / 60, 1)
        (out / "README.md").write_text(readme(report, cfg.text.max_length))
        shutil.copytree(cfg.logs_dir, out / "logs")  # loss curves (DVC plots) travel with the models
    write_json(cfg.metrics, report)
    return report
