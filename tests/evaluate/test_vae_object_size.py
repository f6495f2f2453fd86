"""bench/vae_object_size/vae_object_size.py: one object through a VAE, scored as generated objects are."""

import pandas as pd
import torch
import torch.nn.functional as F

from bench.vae_object_size.vae_object_size import RADII, results_markdown, round_trip_scores
from tasks.common.toy import SHAPES


class Blurring:
    """A stand-in for the pipeline's ``E`` and ``D`` that keeps nothing finer than ``factor`` pixels."""

    device = torch.device("cpu")

    def __init__(self, factor: int):
        self.factor = factor

    def encode_images(self, images):
        return F.avg_pool2d(images, self.factor)

    def decode_latents(self, latents):
        images = F.interpolate(latents, scale_factor=self.factor, mode="bilinear")
        return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def scores(pipe, shape, radius, frames="VAE"):
    table = pd.DataFrame(round_trip_scores(pipe, shape, radius, videos=2, n_frames=4, size=64, min_pixels=4, seed=0))
    return table[table["frames"] == frames]


def test_as_rendered_every_object_is_found_in_its_colour_on_its_mask():
    for shape in SHAPES:
        table = scores(None, shape, RADII[0], "rendered")
        assert len(table) == 2  # no VAE given: the rendered frames only
        assert (table["colour_accuracy"] == 1.0).all(), shape
        assert (table["iou"] > 0.85).all(), (shape, table["iou"].tolist())  # anti-aliased edges cost a little


def test_a_round_trip_that_loses_detail_costs_small_objects_more():
    small, large = (scores(Blurring(8), "diamond", r)["iou"].mean() for r in (RADII[0], RADII[-1]))
    assert small < large < scores(Blurring(8), "diamond", RADII[-1], "rendered")["iou"].mean()
    exact = scores(Blurring(1), "diamond", RADII[0])["iou"]  # a lossless round trip scores as rendered
    assert exact.tolist() == scores(Blurring(1), "diamond", RADII[0], "rendered")["iou"].tolist()


def test_the_results_have_a_row_per_shape_and_a_column_per_size():
    rows = [
        {
            "frames": frames,
            "shape": s,
            "radius": r,
            "pixels": 4 * r * r,
            "iou": 0.8 if frames == "VAE" else 0.95,
            "colour_accuracy": 0.5 if s == "star" else 1.0,
        }
        for frames in ("VAE", "rendered")
        for s in SHAPES
        for r in (6.0, 9.0)
    ]
    vae, rendered, both = results_markdown(pd.DataFrame(rows), "# header").split("\n\n")[2::2]
    for shape in SHAPES:
        assert f"| {shape} | 0.80 | 0.80 |" in vae and f"| {shape} | 0.95 | 0.95 |" in rendered
    assert "| (object pixels) | 144 | 324 |" in vae
    assert "| star | 0.00 | 0.00 |" in both and "| circle | 1.00 | 1.00 |" in both
