"""MaskVideoPipeline: clean frame 1, shared noise (eq. 8), autoregressive chunks, uint8 output."""

import numpy as np
import pytest
import torch

from model.arrays import to_images
from model.attention import ObjectPrompts
from model.first_frame import make_first_frame
from model.pipeline import MaskVideoPipeline
from model.sampler_settings import PAPER_SAMPLER
from model.sampling import adain, block_mean, lowfreq_from_first, motion_windows, shared_noise
from model.video_unet import inflate_unet
from tests.model.conftest import IMAGE_SIZE, LATENT_SIZE, randomize_new_layers

STEPS = 3


@pytest.fixture
def pipe(components):
    video_unet = inflate_unet(components["base_unet"]).eval()
    randomize_new_layers(video_unet)  # as if trained: frames and masks interact
    # Alg. 1 as first implemented (guidance 7.5, shared noise from E(v_1), no AdaIN): what these tests test
    return MaskVideoPipeline(video_unet=video_unet, sampler=PAPER_SAMPLER, **components)


def moving_square(num_frames, size=IMAGE_SIZE):
    """A square sliding right: (F, H, W) bool."""
    masks = np.zeros((num_frames, size, size), dtype=bool)
    for i in range(num_frames):
        masks[i, 8:20, 2 + 2 * i : 14 + 2 * i] = True
    return masks


def first_frame_image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)


class UNetSpy:
    """Records the inputs of every video-UNet call (a forward pre-hook)."""

    NAMES = ("sample", "timestep", "encoder_hidden_states", "masks")

    def __init__(self, video_unet):
        self.calls = []
        self.handle = video_unet.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        given = {**dict(zip(self.NAMES, args)), **kwargs}
        masks = given.get("masks")
        self.calls.append(
            dict(
                sample=given["sample"].clone(),
                timestep=given["timestep"],
                masks=None if masks is None else masks.clone(),
            )
        )


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def first_frame(pipe, text, first_masks, guidance_scale, seed, **kwargs):
    """``make_first_frame`` at the tests' latent size and step count: frame 1 ``(B, 3, H, W)``."""
    size = (LATENT_SIZE, LATENT_SIZE)
    image, _ = make_first_frame(
        pipe,
        text,
        first_masks,
        size,
        num_inference_steps=STEPS,
        guidance_scale=guidance_scale,
        generator=gen(seed),
        **kwargs,
    )
    return image


def test_frame_1_stays_E_v1_at_every_step(pipe):
    frame = first_frame_image()
    spy, seen = UNetSpy(pipe.video_unet), []
    pipe(
        "a red ball",
        moving_square(4),
        first_frame=frame,
        num_inference_steps=STEPS,
        guidance_scale=2.0,
        generator=gen(),
        callback=lambda info: seen.append(info["latents"]),
    )
    e_v1 = pipe.encode_images(to_images(frame))
    assert len(spy.calls) == STEPS and len(seen) == STEPS
    for call, latents in zip(spy.calls, seen):
        assert torch.equal(call["sample"][:1, :, 0], e_v1) and torch.equal(
            call["sample"][1:, :, 0], e_v1
        )  # both CFG halves
        assert torch.equal(latents[:, :, 0], e_v1)
    assert not torch.equal(spy.calls[0]["sample"][:, :, 1], spy.calls[-1]["sample"][:, :, 1])  # the rest moves


def test_controlnet_first_frame_is_eq3_and_stays_clean(pipe):
    spy = UNetSpy(pipe.video_unet)
    masks = moving_square(3)
    pipe("a red ball", masks, num_inference_steps=STEPS, guidance_scale=2.0, generator=gen(1))
    # the same first draws, made explicitly: ControlNet(x_1, c_p, m_1), then E(v_1)
    text = pipe.encode_prompt(["a red ball"], [""])
    image = first_frame(pipe, text, torch.as_tensor(masks[:1]).float(), 2.0, 1, source="controlnet")
    e_v1 = pipe.encode_images(image)
    for call in spy.calls:
        torch.testing.assert_close(call["sample"][:1, :, 0], e_v1, atol=0, rtol=0)
    # the mask steers frame 1 through the ControlNet; without it (the ablation) frame 1 differs
    image_text = first_frame(pipe, text, None, 2.0, 1, source="text")
    assert (image - image_text).abs().max() > 1e-3


def test_controlnet_scale_weights_the_residuals(pipe):
    text = pipe.encode_prompt(["a red ball"], [""])
    first_mask = torch.as_tensor(moving_square(1)).float()

    def frame(scale, source="controlnet"):
        image = first_frame(pipe, text, first_mask, 2.0, 3, source=source, controlnet_conditioning_scale=scale)
        return image

    # scale 0 silences the ControlNet: frame 1 is the plain text-to-image sample, bit for bit
    torch.testing.assert_close(frame(0.0), frame(1.0, source="text"), atol=0, rtol=0)
    one, two = frame(1.0), frame(2.0)
    assert (one - frame(0.0)).abs().max() > 1e-3 and (two - one).abs().max() > 1e-3


@pytest.mark.parametrize("mode, alpha", [("paper", 0.2), ("lamp", 0.2), ("off", 0.2), ("paper", 0.0)])
def test_initial_noise_follows_eq8(pipe, mode, alpha):
    frame, num_frames = first_frame_image(), 4
    spy = UNetSpy(pipe.video_unet)
    pipe(
        "a red ball",
        moving_square(num_frames),
        first_frame=frame,
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        shared_noise=mode,
        alpha=alpha,
        generator=gen(2),
    )
    e_v1 = pipe.encode_images(to_images(frame))
    # the pipeline's draws in order: frame 1's noise (lamp only, no ControlNet run here), then frames 2..n
    g = gen(2)
    first_noise = torch.randn(e_v1.shape, generator=g) if mode == "lamp" else None
    eps = torch.randn(1, 4, num_frames - 1, LATENT_SIZE, LATENT_SIZE, generator=g)
    shared = {"paper": e_v1, "lamp": first_noise, "off": None}[mode]
    expected = eps if shared is None or alpha == 0 else alpha * shared[:, :, None] + (1 - alpha) * eps
    torch.testing.assert_close(spy.calls[0]["sample"][:, :, 1:], expected, atol=1e-6, rtol=1e-6)


def test_shared_noise_function():
    noise, first, first_noise = torch.randn(2, 4, 3, 5, 5), torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(shared_noise(noise, first, "paper", 0.2), 0.2 * first[:, :, None] + 0.8 * noise)
    torch.testing.assert_close(
        shared_noise(noise, first, "lamp", 0.3, first_noise), 0.3 * first_noise[:, :, None] + 0.7 * noise
    )
    assert shared_noise(noise, first, "off", 0.2) is noise and shared_noise(noise, first, "paper", 0.0) is noise
    with pytest.raises(ValueError):
        shared_noise(noise, first, "lamp", 0.2)


def test_block_mean_is_a_projection_onto_block_averages():
    x = torch.randn(2, 3, 4, 8, 8, generator=gen(6))
    one, four = block_mean(x, 1), block_mean(x, 4)
    torch.testing.assert_close(one, x.mean(dim=(-2, -1), keepdim=True).expand_as(x))
    torch.testing.assert_close(
        four[..., :2, :2], x[..., :2, :2].mean(dim=(-2, -1), keepdim=True).expand(2, 3, 4, 2, 2)
    )
    torch.testing.assert_close(block_mean(four, 4), four)  # idempotent
    torch.testing.assert_close(block_mean(x, 8), x)  # 1-pixel blocks keep everything
    with pytest.raises(ValueError, match="divide"):
        block_mean(x, 3)


@pytest.mark.parametrize("grid", [1, 2])
def test_lowfreq_from_first_swaps_only_the_block_means(grid):
    noise, first, ref = (
        torch.randn(*shape, generator=gen(i)) for i, shape in enumerate([(2, 4, 3, 8, 8), (2, 4, 8, 8), (2, 4, 8, 8)])
    )
    alpha_bar = 0.01
    out = lowfreq_from_first(noise, first, ref, alpha_bar, grid)
    x_t = 0.1 * first + 0.99**0.5 * ref  # frame 1 noised to alpha_bar
    for f in range(3):  # every frame gets x_T(v_1)'s block means, and keeps its own detail
        torch.testing.assert_close(block_mean(out[:, :, f], grid), block_mean(x_t, grid))
        torch.testing.assert_close(
            out[:, :, f] - block_mean(out[:, :, f], grid), noise[:, :, f] - block_mean(noise[:, :, f], grid)
        )


def test_pipeline_lowfreq_noise_uses_the_first_timesteps_alpha_bar(pipe):
    frame, num_frames = first_frame_image(), 4
    spy = UNetSpy(pipe.video_unet)
    pipe(
        "a red ball",
        moving_square(num_frames),
        first_frame=frame,
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        shared_noise="off",
        lowfreq_grid=2,
        generator=gen(2),
    )
    e_v1 = pipe.encode_images(to_images(frame))
    eps = torch.randn(1, 4, num_frames - 1, LATENT_SIZE, LATENT_SIZE, generator=gen(2))
    pipe.scheduler.set_timesteps(STEPS)
    alpha_bar = pipe.scheduler.alphas_cumprod[int(pipe.scheduler.timesteps[0])]
    assert 0.05 < alpha_bar < 0.2  # 3 DDIM steps start at t = 667: some signal is left
    expected = lowfreq_from_first(eps, e_v1, eps[:, :, 0], alpha_bar, 2)
    torch.testing.assert_close(spy.calls[0]["sample"][:, :, 1:], expected, atol=1e-6, rtol=1e-6)


def test_three_chunk_video_starts_each_chunk_from_the_previous_last_frame(pipe):
    masks = moving_square(7)
    spy, finals = UNetSpy(pipe.video_unet), {}

    def keep_final(info):
        if info["step"] == info["num_steps"] - 1:
            finals[info["chunk"]] = info["latents"]
        assert info["num_chunks"] == 3

    video = pipe(
        "a red ball",
        masks,
        first_frame=first_frame_image(),
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        window=3,
        generator=gen(3),
        callback=keep_final,
        output_type="latent",
    ).frames
    assert [list(w) for w in motion_windows(7, 3)] == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    assert len(spy.calls) == 3 * STEPS and video.shape == (1, 4, 7, LATENT_SIZE, LATENT_SIZE)
    for k in range(3):
        chunk_calls = spy.calls[k * STEPS : (k + 1) * STEPS]
        for call in chunk_calls:
            assert call["sample"].shape[2] == 3
            torch.testing.assert_close(
                call["masks"], torch.as_tensor(masks[None, 2 * k : 2 * k + 3]).float(), atol=0, rtol=0
            )
            if k > 0:  # chunk k's frame 1 is chunk k-1's last frame as an image, E(D(z)), clean at every step
                last = finals[k - 1][:, :, -1]
                assert torch.equal(call["sample"][:, :, 0], pipe.encode_images(pipe.decode_images(last)))
                assert (call["sample"][:, :, 0] - last).abs().max() > 1e-3  # the round trip is not the identity
        new = slice(0 if k == 0 else 1, 3)  # the output keeps chunk k-1's own last frame, not its re-encoding
        torch.testing.assert_close(video[:, :, 2 * k + new.start : 2 * k + 3], finals[k][:, :, new], atol=0, rtol=0)


def test_every_chunk_takes_its_low_frequencies_from_the_videos_frame_1(pipe):
    frame, grid = first_frame_image(), 2
    spy = UNetSpy(pipe.video_unet)
    pipe(
        "a red ball",
        moving_square(5),
        first_frame=frame,
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        shared_noise="off",
        lowfreq_grid=grid,
        window=3,
        generator=gen(5),
    )
    e_v1 = pipe.encode_images(to_images(frame))
    g = gen(5)  # the draws in order: chunk 1's frames 2..3, then chunk 2's
    eps = [torch.randn(1, 4, 2, LATENT_SIZE, LATENT_SIZE, generator=g) for _ in range(2)]
    pipe.scheduler.set_timesteps(STEPS)
    alpha_bar = pipe.scheduler.alphas_cumprod[int(pipe.scheduler.timesteps[0])]
    for k in range(2):
        start = spy.calls[k * STEPS]["sample"]
        if k == 0:
            assert torch.equal(start[:, :, 0], e_v1)
        else:  # chunk 2 starts from its own first frame, yet takes its low frequencies from the video's
            assert not torch.equal(start[:, :, 0], e_v1)
        expected = lowfreq_from_first(eps[k], e_v1, eps[k][:, :, 0], alpha_bar, grid)
        torch.testing.assert_close(start[:, :, 1:], expected, atol=1e-6, rtol=1e-6)


def test_uint8_output_is_seeded_and_ablations_change_it(pipe):
    masks = moving_square(3)
    kwargs = dict(first_frame=first_frame_image(), num_inference_steps=STEPS, guidance_scale=2.0)
    a = pipe("a red ball", masks, generator=gen(4), **kwargs).frames
    b = pipe("a red ball", masks, generator=gen(4), **kwargs).frames
    assert a.dtype == np.uint8 and a.shape == (3, IMAGE_SIZE, IMAGE_SIZE, 3)
    np.testing.assert_array_equal(a, b)
    no_mask = pipe("a red ball", masks, generator=gen(4), use_masks=False, **kwargs).frames
    assert np.abs(a.astype(int) - no_mask.astype(int)).max() > 0
    batch = pipe(
        ["a red ball", "a blue box"],
        np.stack([masks, masks]),
        generator=gen(4),
        first_frame=np.stack([first_frame_image(0), first_frame_image(1)]),
        num_inference_steps=STEPS,
    ).frames
    assert batch.shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE, 3)


def test_video_guidance_scale_guides_frames_2_to_n_alone(pipe):
    masks = moving_square(3)

    def run(g, vg, **kw):
        return pipe(
            "a red ball",
            masks,
            num_inference_steps=STEPS,
            guidance_scale=g,
            video_guidance_scale=vg,
            generator=gen(6),
            output_type="latent",
            **kw,
        ).frames

    both = run(3.0, None)
    torch.testing.assert_close(run(3.0, 3.0), both, atol=0, rtol=0)  # None = the frame-1 scale
    weak_video = run(3.0, 1.0)
    torch.testing.assert_close(weak_video[:, :, 0], both[:, :, 0], atol=0, rtol=0)  # frame 1 untouched
    assert (weak_video[:, :, 1:] - both[:, :, 1:]).abs().max() > 1e-3
    assert (run(1.0, 3.0)[:, :, 0] - both[:, :, 0]).abs().max() > 1e-3  # frame 1 follows its own scale
    # unguided frames 2..n see the positive prompt alone: the same as a run with no guidance at all
    given = dict(first_frame=first_frame_image())
    torch.testing.assert_close(run(3.0, 1.0, **given), run(1.0, None, **given), atol=1e-5, rtol=1e-5)


def guided_steps(pipe, g: float, w: float, steps: int, **sampler):
    """Sample with first frame given; every video-UNet call's inputs and outputs and every prediction the
    scheduler stepped with."""
    outputs, calls, stepped = [], UNetSpy(pipe.video_unet), []
    hook = pipe.video_unet.register_forward_hook(lambda module, args, out: outputs.append(out.clone()))
    step = pipe.scheduler.step
    pipe.scheduler.step = lambda pred, t, sample, **kw: stepped.append(pred.clone()) or step(pred, t, sample, **kw)
    pipe(
        "a red ball",
        moving_square(3),
        first_frame=first_frame_image(),
        num_inference_steps=steps,
        guidance_scale=g,
        mask_guidance_scale=w,
        generator=gen(),
        **{"video_guidance_interval": (0.0, 1.0), "mask_guidance_interval": (0.0, 1.0), **sampler},  # every step
    )
    hook.remove()
    return calls.calls, outputs, stepped


def test_mask_guidance_adds_w_times_the_masks_effect(pipe):
    """pred = uncond + g (cond - uncond) + w (cond - cond without masks), fed to the scheduler's step."""
    g, w = 3.0, 1.5
    calls, outputs, stepped = guided_steps(pipe, g, w, STEPS)
    assert len(outputs) == STEPS and len(stepped) == STEPS  # every pass of a step in one UNet call
    for call, out, pred in zip(calls, outputs, stepped):
        uncond_input, cond_input, unmasked_input = call["sample"].chunk(3)
        assert torch.equal(uncond_input, cond_input) and torch.equal(unmasked_input, cond_input)
        assert call["masks"].shape[0] == 2  # the masks cover the guided rows, not the last one
        uncond, cond, unmasked = out.chunk(3)
        expected = uncond + g * (cond - uncond) + w * (cond - unmasked)
        torch.testing.assert_close(pred, expected[:, :, 1:], atol=1e-6, rtol=1e-6)
    assert (cond - unmasked).abs().max() > 1e-4  # the masks do change the prediction


def test_guidance_intervals_pick_each_steps_rows(pipe):
    """Outside its interval a guidance drops its rows from the step's call and its term from the step."""
    g, w = 3.0, 1.5
    intervals = dict(video_guidance_interval=(0.0, 0.75), mask_guidance_interval=(0.25, 0.5))  # steps 0-2; 1
    calls, outputs, stepped = guided_steps(pipe, g, w, 4, **intervals)
    assert [len(c["sample"]) for c in calls] == [2, 3, 2, 1]
    assert [None if c["masks"] is None else len(c["masks"]) for c in calls] == [2, 2, 2, 1]
    for i, out in enumerate(outputs):
        preds = out.chunk(len(out))
        expected = preds[0] + g * (preds[1] - preds[0]) if i < 3 else preds[0]
        if i == 1:
            expected = expected + w * (preds[1] - preds[2])
        torch.testing.assert_close(stepped[i], expected[:, :, 1:], atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="mask_guidance_interval must be"):
        pipe("a red ball", moving_square(3), num_inference_steps=1, mask_guidance_interval=(0.5, 0.5))


@pytest.mark.parametrize("objects", [False, True])
def test_batched_passes_equal_calls_of_their_own(pipe, objects):
    """Rows without masks behind rows with them: each row as a call of its own gives it (the sampler's
    mask-guidance pass batched with the guided ones)."""
    unet, g = pipe.video_unet, gen(5)
    sample = torch.randn(2, 4, 3, LATENT_SIZE, LATENT_SIZE, generator=g)
    text = torch.randn(2, 77, pipe.text_encoder.config.hidden_size, generator=g)
    masks = torch.as_tensor(moving_square(3)[None]).float()
    routed, alone = {}, ({}, {})
    if objects:
        object_masks = torch.as_tensor(two_objects()[:, :3][None]).float()
        object_text = torch.randn(2, 2, 77, text.shape[-1], generator=g)
        routed = dict(object_text=object_text, object_masks=torch.cat([object_masks, object_masks]))
        alone = tuple(dict(object_text=object_text[i : i + 1], object_masks=object_masks) for i in range(2))
    with torch.no_grad():
        batched = unet(sample, 10, text, masks, **routed)
        masked = unet(sample[:1], 10, text[:1], masks, **alone[0])
        unmasked = unet(sample[1:], 10, text[1:], None, **alone[1])
    torch.testing.assert_close(batched, torch.cat([masked, unmasked]), atol=1e-5, rtol=1e-5)
    assert (masked - unet(sample[:1], 10, text[:1], None, **alone[0])).abs().max() > 1e-4  # the masks matter


def test_mask_guidance_off_is_the_plain_sampler(pipe):
    masks = moving_square(3)

    def run(**kw):
        return pipe(
            "a red ball",
            masks,
            num_inference_steps=STEPS,
            guidance_scale=2.0,
            generator=gen(2),
            output_type="latent",
            **kw,
        ).frames

    torch.testing.assert_close(run(mask_guidance_scale=0.0), run(), atol=0, rtol=0)
    assert (
        run(mask_guidance_scale=2.0, mask_guidance_interval=(0.0, 1.0))[:, :, 1:] - run()[:, :, 1:]
    ).abs().max() > 1e-4


def test_adain_matches_frame_statistics(pipe):
    latents = pipe(
        "a red ball",
        moving_square(3),
        first_frame=first_frame_image(),
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        adain=True,
        adain_start=0.0,
        generator=gen(5),
        output_type="latent",
    ).frames
    first, rest = latents[:, :, 0], latents[:, :, 1:]
    torch.testing.assert_close(
        rest.mean((-2, -1)), first.mean((-2, -1))[:, :, None].expand(-1, -1, 2), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        rest.std((-2, -1)), first.std((-2, -1))[:, :, None].expand(-1, -1, 2), atol=1e-3, rtol=1e-3
    )
    x, ref = torch.randn(1, 2, 3, 4, 4) * 3 + 1, torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(
        adain(x, ref).mean((-2, -1)), ref.mean((-2, -1))[:, :, None].expand(-1, -1, 3), atol=1e-5, rtol=0
    )


def region_means(latents: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Per-channel means of ``(B, C, H, W)`` latents in each of ``(B, R, H, W)`` regions: ``(B, C, R)``."""
    return torch.einsum("bchw,brhw->bcr", latents, regions) / regions.sum((-2, -1))[:, None]


def test_regional_adain_matches_each_region_to_the_same_region_of_the_reference():
    from model.sampling import regional_adain

    torch.manual_seed(0)
    x, ref = torch.randn(2, 4, 3, 6, 6) * 3 + 1, torch.randn(2, 4, 6, 6)
    whole = torch.ones(2, 1, 3, 6, 6)
    torch.testing.assert_close(regional_adain(x, ref, whole, whole[:, :, 0]), adain(x, ref), atol=1e-5, rtol=1e-5)

    # an object (a 3x3 block, elsewhere in frame 1) and the rest; hidden in frame 3, one position in frame 4
    obj = torch.zeros(2, 4, 6, 6)
    obj[:, 0, :3, :3] = obj[:, 1, 2:5, 2:5] = obj[:, 3, 5, 5] = 1
    ref_obj = torch.zeros(2, 6, 6)
    ref_obj[:, 3:, 3:] = 1
    regions, ref_regions = torch.stack([obj, 1 - obj], 1), torch.stack([ref_obj, 1 - ref_obj], 1)
    x = torch.randn(2, 4, 4, 6, 6) * 3 + 1
    out = regional_adain(x, ref, regions, ref_regions)
    expected = region_means(ref, ref_regions)
    for f in range(3):
        present = regions[:, :, f].sum((0, -2, -1)) > 0
        got = region_means(out[:, :, f], regions[:, :, f])
        torch.testing.assert_close(got[..., present], expected[..., present], atol=1e-5, rtol=0)
    std = out[:, :, 0][regions[:, 0, 0, None].expand_as(out[:, :, 0]).bool()].view(2, 4, 9).std(-1)
    torch.testing.assert_close(std, ref[ref_regions[:, 0, None].expand_as(ref).bool()].view(2, 4, 9).std(-1))
    # a region of one position cannot be matched: left as it was, beside the matched rest
    assert torch.equal(out[:, :, 3, 5, 5], x[:, :, 3, 5, 5])
    assert not torch.equal(out[:, :, 3, 0, 0], x[:, :, 3, 0, 0])


def test_adain_per_object_holds_each_object_to_its_frame_1_region(pipe):
    from model.regions import adain_regions

    objects = np.zeros((2, 4, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)  # whole latent positions (x4 pixels)
    for i in range(4):
        objects[0, i, 4:16, 4 + 4 * i : 16 + 4 * i] = True
        objects[1, i, 16:28, 16 - 4 * i : 28 - 4 * i] = True
    kwargs = dict(
        first_frame=first_frame_image(),
        num_inference_steps=STEPS,
        guidance_scale=1.0,
        adain=True,
        adain_start=0.0,
        object_prompts=["a red box", "a blue ball"],
        object_masks=objects,
        output_type="latent",
    )
    latents = pipe("a field", objects.any(0), generator=gen(5), **kwargs).frames
    regions = adain_regions(torch.as_tensor(objects[None]).float(), (LATENT_SIZE, LATENT_SIZE))
    assert set(regions.unique().tolist()) == {0.0, 1.0}
    first = region_means(latents[:, :, 0], regions[:, :, 0])
    for f in range(1, 4):
        torch.testing.assert_close(region_means(latents[:, :, f], regions[:, :, f]), first, atol=1e-4, rtol=0)
    whole = pipe("a field", objects.any(0), generator=gen(5), adain_per_object=False, **kwargs).frames
    assert (region_means(whole[:, :, 1], regions[:, :, 1]) - first).abs().amax() > 1e-3


def test_decode_objects_decodes_each_object_without_the_others(pipe):
    torch.manual_seed(0)
    latents = torch.randn(2, 4, LATENT_SIZE, LATENT_SIZE)
    masks = torch.zeros(2, 2, IMAGE_SIZE, IMAGE_SIZE)  # 4 pixels per latent cell
    masks[:, 0, 0:8, 0:10] = 1  # object 1: cells [0:2, 0:3] (the third one partly)
    masks[:, 1, 8:20, 8:20] = 1  # object 2: cells [2:5, 2:5]
    cells = torch.zeros(2, 2, LATENT_SIZE, LATENT_SIZE, dtype=torch.bool)
    cells[:, 0, 0:2, 0:3] = cells[:, 1, 2:5, 2:5] = True
    ground = ~cells.any(1, keepdim=True)
    ground_mean = (latents * ground).sum((-2, -1), keepdim=True) / ground.sum((-2, -1), keepdim=True)
    out = pipe.decode_objects(latents, masks)
    plain = pipe.decode_images(latents)
    for k in range(2):
        alone = pipe.decode_images(torch.where(cells[:, 1 - k : 2 - k], ground_mean, latents))
        inside = masks[:, k : k + 1].bool().expand_as(out)
        torch.testing.assert_close(out[inside], alone[inside], atol=1e-5, rtol=1e-5)
        assert (alone[inside] - plain[inside]).abs().amax() > 1e-3  # the other object's latents mattered
    outside = ~masks.bool().any(1, keepdim=True).expand_as(out)
    torch.testing.assert_close(out[outside], plain[outside], atol=1e-5, rtol=1e-5)
    assert torch.equal(pipe.decode_objects(latents, masks[:, :1]), plain)  # one object: the plain decode
    assert torch.equal(pipe.decode_objects(latents, None), plain)
    frames = pipe.decode_latents(latents, masks)  # the same, as uint8 frames (N, H, W, 3)
    assert frames.dtype == np.uint8 and frames.shape == (2, IMAGE_SIZE, IMAGE_SIZE, 3)
    expected = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(frames, expected)
    np.testing.assert_array_equal(pipe.decode_latents(latents), pipe.decode_latents(latents, masks[:, :1]))


def test_missing_pieces_are_clear_errors(pipe):
    pipe.controlnet = None
    with pytest.raises(ValueError, match="controlnet"):
        pipe("a red ball", moving_square(3), num_inference_steps=1)
    frames = pipe(
        "a red ball", moving_square(3), first_frame_source="text", num_inference_steps=1, generator=gen()
    ).frames
    assert frames.shape == (3, IMAGE_SIZE, IMAGE_SIZE, 3)


def test_memory_switches_keep_results(pipe):
    masks, frame = moving_square(3), first_frame_image()
    kwargs = dict(first_frame=frame, num_inference_steps=2, guidance_scale=2.0)
    ref = pipe("a red ball", masks, generator=gen(6), **kwargs).frames
    pipe.enable_vae_slicing()  # one frame at a time through the VAE: same numbers up to float rounding
    sliced = pipe("a red ball", masks, generator=gen(6), **kwargs).frames
    assert np.abs(sliced.astype(int) - ref.astype(int)).max() <= 1
    pipe.to(dtype=torch.bfloat16)
    assert pipe.dtype == torch.bfloat16
    low = pipe("a red ball", masks, generator=gen(6), **kwargs).frames
    assert low.dtype == np.uint8 and np.abs(low.astype(int) - ref.astype(int)).mean() < 20  # bf16 rounding only


def test_attention_slicing_and_cpu_offload_keep_results(pipe):
    masks = moving_square(3)
    kwargs = dict(num_inference_steps=2, guidance_scale=2.0, output_type="latent")
    ref = pipe("a red ball", masks, generator=gen(7), **kwargs).frames
    pipe.enable_attention_slicing(1)  # one (batch x head) row at a time, in every UNet
    sliced = pipe("a red ball", masks, generator=gen(7), **kwargs).frames
    torch.testing.assert_close(sliced, ref, rtol=1e-4, atol=1e-5)
    pipe.enable_attention_slicing(None)
    pipe.enable_vae_tiling()
    pipe.enable_model_cpu_offload("cpu")  # the hooks only; on this machine the execution device is the CPU
    offloaded = pipe("a red ball", masks, generator=gen(7), **kwargs).frames
    torch.testing.assert_close(offloaded, ref, rtol=1e-4, atol=1e-5)
    assert all(hasattr(m, "_hf_hook") for m in pipe.modules())


def test_idle_page_out_pages_out_frame_1s_networks_once_used(pipe, monkeypatch):
    masks = moving_square(3)
    kwargs = dict(num_inference_steps=2, guidance_scale=2.0, output_type="latent")
    ref = pipe("a red ball", masks, generator=gen(7), **kwargs).frames
    paged = []
    monkeypatch.setattr("model.switches.page_out", lambda *modules: paged.append(modules))
    pipe("a red ball", masks, generator=gen(7), **kwargs)
    assert paged == []  # off unless switched on
    pipe.enable_idle_page_out()
    again = pipe("a red ball", masks, generator=gen(7), **kwargs).frames
    assert paged == [(pipe.text_encoder,), (pipe.controlnet,)]  # after the prompts, after frame 1
    torch.testing.assert_close(again, ref, rtol=0, atol=0)


def test_return_dict_false_gives_the_frames_themselves(pipe):
    masks = moving_square(3)
    out = pipe("a red ball", masks, num_inference_steps=1, generator=gen(8))
    frames = pipe("a red ball", masks, num_inference_steps=1, generator=gen(8), return_dict=False)
    assert isinstance(frames, np.ndarray) and np.array_equal(out.frames, frames)


def test_the_controlnet_sees_the_first_mask_as_its_condition_draws_it(pipe):
    from model.conditioning import ControlNetCondition, outline

    seen = []
    pipe.controlnet.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["controlnet_cond"]), with_kwargs=True)
    masks = moving_square(3)
    pipe("a red ball", masks, num_inference_steps=1, guidance_scale=1.0, generator=gen(9))
    pipe.controlnet_condition = ControlNetCondition("scribble", stroke=0.1)
    pipe("a red ball", masks, num_inference_steps=1, guidance_scale=1.0, generator=gen(9))
    white, scribble = seen
    inside = torch.nn.functional.interpolate(torch.as_tensor(masks[:1, None]).float(), size=white.shape[-2:])
    assert torch.equal(white, inside.expand_as(white))
    width = round(0.1 * white.shape[-1])
    assert torch.equal(scribble, outline(inside, width).expand_as(white)) and 0 < scribble.sum() < white.sum()


# ---- per-object prompts ---------------------------------------------------------------------------


def two_objects(num_frames=4, size=IMAGE_SIZE):
    """Two squares crossing: one sliding right, one sliding left, (2, F, H, W) bool."""
    masks = np.zeros((2, num_frames, size, size), dtype=bool)
    for i in range(num_frames):
        masks[0, i, 4:14, 2 + 3 * i : 12 + 3 * i] = True
        masks[1, i, 18:28, 20 - 3 * i : 30 - 3 * i] = True
    return masks


def test_without_object_prompts_the_pipeline_is_bit_identical_to_the_processor_before_them(pipe):
    from model.attention import MaskCrossAttnProcessor
    from tests.model.test_attention import legacy_mask_cross_attention

    class Legacy(MaskCrossAttnProcessor):
        def __call__(
            self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, video=None
        ):
            return legacy_mask_cross_attention(self, attn, hidden_states, encoder_hidden_states, video)

    kwargs = dict(num_inference_steps=STEPS, mask_guidance_scale=1.5, output_type="latent")
    new = pipe("a red box", moving_square(4), generator=gen(3), **kwargs).frames
    for module in pipe.video_unet.modules():
        if isinstance(getattr(module, "processor", None), MaskCrossAttnProcessor):
            legacy = Legacy(None)
            legacy.mask_branch = module.processor.mask_branch
            module.processor = legacy
    old = pipe("a red box", moving_square(4), generator=gen(3), **kwargs).frames
    assert torch.equal(new, old)


def test_one_object_with_the_scene_prompt_is_the_plain_pipeline(pipe):
    masks = moving_square(4)
    kwargs = dict(num_inference_steps=STEPS, mask_guidance_scale=1.5, output_type="latent")
    plain = pipe("a red box", masks, generator=gen(1), **kwargs).frames
    routed = pipe(
        "a red box", masks, object_prompts=["a red box"], object_masks=masks[None], generator=gen(1), **kwargs
    )
    torch.testing.assert_close(routed.frames, plain, atol=1e-4, rtol=1e-4)


def test_object_prompts_reach_frame_1_and_frames_2_to_n(pipe):
    objects = two_objects()
    union = objects.any(0)
    spy = UNetSpy(pipe.video_unet)
    kwargs = dict(num_inference_steps=STEPS, output_type="latent", object_masks=objects)
    plain = pipe("a field", union, num_inference_steps=STEPS, output_type="latent", generator=gen(2)).frames
    routed = pipe("a field", union, object_prompts=["a red box", "a blue ball"], generator=gen(2), **kwargs).frames
    swapped = pipe("a field", union, object_prompts=["a blue ball", "a red box"], generator=gen(2), **kwargs).frames
    for video in (routed, swapped):
        assert (video[:, :, 0] - plain[:, :, 0]).abs().amax() > 1e-4  # frame 1: regions composed
        assert (video[:, :, 1:] - plain[:, :, 1:]).abs().amax() > 1e-4
    assert (routed - swapped).abs().amax() > 1e-4  # which object gets which words matters
    assert len(spy.calls) == 3 * STEPS  # the per-object inputs travel as keywords: positional calls unchanged
    spy.handle.remove()


def test_object_prompt_errors_name_what_is_wrong(pipe):
    masks = moving_square(4)
    with pytest.raises(ValueError, match="go together"):
        pipe("a box", masks, object_prompts=["a red box"], num_inference_steps=1)
    with pytest.raises(ValueError, match=r"object_masks must be \(B, K, F, H, W\)"):
        pipe("a box", masks, object_prompts=["a", "b"], object_masks=masks[None], num_inference_steps=1)


def test_frame_1_regions_take_each_objects_pixels_inside_its_mask():
    from model.regions import compose_regions

    batch, size = 2, 4
    images = torch.randn(3, batch, 3, size, size)  # the scene's, object 1's, object 2's
    masks = torch.zeros(batch, 2, size, size)
    masks[:, 0, :2, :2] = 1  # object 1: top left
    masks[:, 1, 2:, 2:] = 1  # object 2: bottom right
    masks[:, :, 0, 3] = 1  # a pixel both objects claim: half each
    out = compose_regions(images, masks)
    scene, first, second = images
    torch.testing.assert_close(out[..., :2, :2], first[..., :2, :2])
    torch.testing.assert_close(out[..., 2:, 2:], second[..., 2:, 2:])
    torch.testing.assert_close(out[..., 2:, :2], scene[..., 2:, :2])  # neither object: the scene
    torch.testing.assert_close(out[..., 0, 3], (first[..., 0, 3] + second[..., 0, 3]) / 2)


def test_frame_1_object_pixels_are_what_its_prompt_draws_alone(pipe):
    """Object k's pixels of frame 1 are exactly frame 1 of object k's prompt alone on object k's own
    first mask, with the same noise; the scene's prompt alone on every object's mask gives the rest."""
    objects = torch.as_tensor(two_objects()[:, 0][None]).float()  # (1, K, H, W), frame 1's masks
    union = objects.amax(1)
    prompts = ["a field", "a red box", "a blue ball"]

    def frame_1(prompt, masks, regions=None):
        return first_frame(pipe, pipe.encode_prompt([prompt], [""]), masks, 3.0, 4, objects=regions)

    seen = []
    pipe.controlnet.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["controlnet_cond"]), with_kwargs=True)
    composed = frame_1(prompts[0], union, ObjectPrompts(pipe.encode_prompt(prompts[1:], None)[None], objects))
    # the ControlNet's condition, per branch (scene, object 1, object 2; then the same for the guidance half)
    drawn = [pipe.controlnet_image(m, (LATENT_SIZE, LATENT_SIZE)) for m in (union, objects[:, 0], objects[:, 1])]
    torch.testing.assert_close(seen[0], torch.cat(drawn * 2), atol=0, rtol=0)
    alone = [frame_1(prompts[0], union)] + [frame_1(p, objects[:, k]) for k, p in enumerate(prompts[1:])]
    inside = objects[:, :, None].bool()  # (1, K, 1, H, W)
    for k in range(2):
        torch.testing.assert_close(
            composed[inside[:, k].expand_as(composed)],
            alone[k + 1][inside[:, k].expand_as(composed)],
            atol=1e-5,
            rtol=1e-5,
        )
    outside = ~inside.any(1).expand_as(composed)
    torch.testing.assert_close(composed[outside], alone[0][outside], atol=1e-5, rtol=1e-5)
