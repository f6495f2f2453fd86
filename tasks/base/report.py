"""The toy base's own README and its folder sizes, written into the base folder with every build."""

from __future__ import annotations

from pathlib import Path


def size_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 2)


def readme(report: dict, max_length: int) -> str:
    """The base folder's README.md from its build report; ``max_length``: the tokenizer's padded length."""
    rows = "\n".join(f"| {k}/ | {v['params']:,} | {v['mb']} |" for k, v in report["sizes"].items())
    built = f"built in {report['wall_minutes']} minutes on {report['device'].upper()}"
    if parts := report.get("built_in_parts"):  # bench/fewshot/variant_base.py --part
        built += (
            f", in two parts beside each other (the UNet, text encoder and ControlNet {parts['generators_minutes']}"
            f" min; the VAE and CLIP {parts['vae_clip_minutes']} min)"
        )
    return f"""# Toy-world base models (stand-ins for SD1.4, a mask ControlNet and CLIP)

Trained from scratch on rendered toy frames by the `base` stage (`python -m flows.base`); float16
safetensors; {report["total_mb"]} MB in all; {built}.

| part | parameters | MB |
|---|---|---|
{rows}

Load them as SD1.4 is loaded (pass `dtype=torch.float32` on a CPU):

```python
# vae, text_encoder, tokenizer, unet, scheduler
pipe = StableDiffusionPipeline.from_pretrained("base/toy", dtype=torch.float32)
vae = AutoencoderKL.from_pretrained("base/toy", subfolder="vae", dtype=torch.float32)
unet = UNet2DConditionModel.from_pretrained("base/toy", subfolder="unet", dtype=torch.float32)
text_encoder = CLIPTextModel.from_pretrained("base/toy", subfolder="text_encoder", dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained("base/toy", subfolder="tokenizer")
scheduler = DDIMScheduler.from_pretrained("base/toy", subfolder="scheduler")
controlnet = ControlNetModel.from_pretrained("base/toy", subfolder="controlnet", dtype=torch.float32)
clip_model, preprocess, clip_tokenizer = tasks.common.toy_clip.load_toy_clip("base/toy/clip")
```

Frames are 64x64 RGB; latents 4x16x16 (`vae.config.scaling_factor` = {report["vae"]["scaling_factor"]});
prompts are padded to {max_length} tokens. The ControlNet's conditioning image is the binary foreground mask
as a 3-channel image in {{0, 1}}.

Held-out (colour, shape, ground) combinations, never trained on: {", ".join(report["heldout_combos"])}.
Quality on them is in `metrics/base.json`; `samples.png` shows text-to-image samples (top rows) and
ControlNet samples with their conditioning mask outlined (bottom rows).
"""
