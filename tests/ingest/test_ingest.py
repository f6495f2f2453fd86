"""Ingest: good videos become exact clips; every kind of bad input is refused by name."""

import json
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from tasks.common.io import BadInput, file_sha256, load_clip, write_mask_pngs
from tasks.contract import read_clip_manifest
from tasks.ingest.stage import fit_and_crop, ingest, sample_indices
from tests.ingest.conftest import toy_video


def test_clip_matches_source_frames_and_manifest(dataset):
    frames, masks = toy_video(0, size=32, n_frames=12)
    path = dataset.add("a", frames, masks)
    dataset.add("b")
    cfg = dataset.config(n_frames=6)
    report = ingest(cfg)
    assert report == {"ingested": ["a", "b"], "skipped": [], "prompts_cut": {}}

    table = read_clip_manifest(cfg.out_dir)
    row = table.set_index("id").loc["a"]
    indices = [int(i) for i in row.frame_indices.split()]
    assert indices == [0, 2, 4, 7, 9, 11]  # uniform over 12 frames, rounded
    assert (row.orig_width, row.orig_height, row.n_source_frames, row.fps) == (32, 32, 12, 8.0)
    assert row.content_hash == file_sha256(path)
    assert row.mask_source == "none" and bool(row.has_truth)

    clip = load_clip(f"{cfg.out_dir}/a.npz")
    assert clip["frames"].dtype == np.uint8 and clip["frames"].shape == (6, 32, 32, 3)
    # H.264 at a low CRF: decoded frames stay close to what was rendered
    err = np.abs(clip["frames"].astype(int) - frames[indices].astype(int)).mean()
    assert err < 6, err
    np.testing.assert_array_equal(clip["truth_masks"], masks[indices])


def test_stride_sampling_and_too_short():
    from tasks.ingest.stage import IngestConfig

    cfg = IngestConfig(n_frames=4, sampling="stride", stride=3, start=2)
    assert sample_indices(20, cfg).tolist() == [2, 5, 8, 11]
    with pytest.raises(ValueError, match="needs at least 12"):
        sample_indices(11, cfg)


def test_uniform_sampling_by_time_follows_timestamps():
    from tasks.ingest.stage import IngestConfig

    stamps = np.array([0.0, 0.1, 0.2, 0.3, 1.0, 1.7, 2.0])  # a slow stretch in the middle
    idx = sample_indices(len(stamps), IngestConfig(n_frames=3), stamps)
    assert idx.tolist() == [0, 4, 6]  # t = 0, 1.0, 2.0 — not the index midpoint 3 (t = 0.3)


def test_fit_and_crop_keeps_the_centre():
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 30:50] = 255  # a bar in the middle of a wide image
    out = fit_and_crop(img, 20, 20)
    assert out.shape == (20, 20, 3)
    assert out[:, 5:15].min() == 255 and out[:, :4].max() == 0 and out[:, 16:].max() == 0


def test_user_masks_follow_the_clip_indices(dataset):
    frames, masks = toy_video(1, size=32, n_frames=12)
    dataset.add("u", frames, None)
    write_mask_pngs(masks, dataset.dir / "drawn" / "u")
    dataset.rows[-1]["masks"] = "drawn/u"
    cfg = dataset.config(n_frames=4)
    ingest(cfg)
    clip = load_clip(f"{cfg.out_dir}/u.npz")
    np.testing.assert_array_equal(clip["user_masks"], masks[[0, 4, 7, 11]])
    assert read_clip_manifest(cfg.out_dir).mask_source.tolist() == ["user"]


# ---------------------------------------------------------------------------------------------
# bad input: each case names the file and the problem, and leaves no output behind


def _assert_refused(cfg, *phrases):
    with pytest.raises(BadInput) as info:
        ingest(cfg)
    message = str(info.value)
    for phrase in phrases:
        assert phrase in message, message
    out = Path(cfg.out_dir)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temp folder
    return message


def _ffmpeg(*args):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


def test_empty_file(dataset):
    dataset.add("good")
    dataset.add_file("e", "e.mp4", b"")
    _assert_refused(dataset.config(), "e.mp4", "(id 'e')", "empty file (0 bytes)")


def test_not_a_video(dataset):
    dataset.add_file("t", "notes.mp4", b"just some text, not a video at all")
    _assert_refused(dataset.config(), "notes.mp4", "not a video")


def test_truncated_file(dataset):
    full = dataset.add("whole")
    data = full.read_bytes()
    dataset.add_file("cut", "cut.mp4", data[: len(data) // 2])
    _assert_refused(dataset.config(), "cut.mp4", "truncated or corrupt")


def test_truncated_faststart_file(dataset):
    # moov atom in front: the container opens, the frame data ends early
    full = dataset.add("whole")
    fast = dataset.dir / "fast.mp4"
    _ffmpeg("-i", str(full), "-c", "copy", "-movflags", "+faststart", str(fast))
    data = fast.read_bytes()
    dataset.add_file("cut", "cut.mp4", data[: len(data) * 2 // 3])
    _assert_refused(dataset.config(), "cut.mp4", "truncated or corrupt")


def test_fewer_frames_than_n(dataset):
    frames, _ = toy_video(0, n_frames=5)
    dataset.add("short", frames)
    _assert_refused(dataset.config(n_frames=8), "short.mp4", "has 5 frames, fewer than ingest.n_frames=8")


def test_grayscale(dataset):
    frames, _ = toy_video(0)
    dataset.add("g", np.repeat(frames[..., :1], 3, axis=-1))
    _assert_refused(dataset.config(), "g.mp4", "grayscale video")
    # and the documented switch lets it through
    ingest(dataset.config(allow_grayscale=True))


def test_huge_resolution(dataset):
    dataset.rows.append({"id": "big", "video": "big.mp4", "prompt": "a red band"})
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=4200x16:d=1:r=10",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(dataset.dir / "big.mp4"),
    )
    _assert_refused(dataset.config(), "big.mp4", "resolution 4200x16 exceeds ingest.max_long_side=4096")


def test_variable_frame_rate(dataset):
    src = dataset.add("cfr")
    dataset.rows.pop()
    _ffmpeg(
        "-i",
        str(src),
        "-vf",
        "setpts='if(lt(N,6),N*0.1,0.6+(N-6)*0.4)/TB'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        str(dataset.dir / "vfr.mp4"),
    )
    dataset.rows.append({"id": "vfr", "video": "vfr.mp4", "prompt": "a red star"})
    _assert_refused(dataset.config(), "vfr.mp4", "variable frame rate")
    # allowed, it is sampled uniformly in time. Frame times: 0, 0.1, ..., 0.6, then 1.0, 1.4, ..., 2.6 s;
    # targets 0, 0.87, 1.73, 2.6 s pick frames 0, 7, 9, 11 (uniform by index would pick 0, 4, 7, 11)
    cfg = dataset.config(allow_vfr=True, n_frames=4)
    ingest(cfg)
    indices = read_clip_manifest(cfg.out_dir).frame_indices[0].split()
    assert [int(i) for i in indices] == [0, 7, 9, 11]


def test_path_escaping_the_data_folder(dataset):
    dataset.add("ok")
    dataset.rows.append({"id": "evil", "video": "../../../../etc/passwd", "prompt": "a red star"})
    _assert_refused(dataset.config(), "manifest.yaml", "(id 'evil')", "escapes the data folder")


@pytest.mark.parametrize("prompt", [None, "", "   "])
def test_missing_or_empty_prompt(dataset, prompt):
    dataset.add("p")
    if prompt is None:
        del dataset.rows[-1]["prompt"]
    else:
        dataset.rows[-1]["prompt"] = prompt
    _assert_refused(dataset.config(), "manifest.yaml", "(id 'p')", "missing or empty prompt")


def test_duplicate_ids(dataset):
    dataset.add("same")
    dataset.add("same")
    _assert_refused(dataset.config(), "manifest.yaml", "(id 'same')", "duplicate id (rows 1 and 2)")


def test_user_masks_wrong_count(dataset):
    frames, masks = toy_video(0, n_frames=12)
    dataset.add("m", frames, None, masks="drawn/m")
    write_mask_pngs(masks[:10], dataset.dir / "drawn" / "m")
    _assert_refused(dataset.config(), "drawn/m", "10 mask PNGs for a video of 12 frames")


def test_user_masks_wrong_size(dataset):
    frames, _ = toy_video(0, n_frames=12)
    dataset.add("m", frames, None, masks="drawn/m")
    write_mask_pngs(np.zeros((12, 16, 16), bool), dataset.dir / "drawn" / "m")
    _assert_refused(dataset.config(), "drawn/m", "masks are 16x16, the video is 32x32")


def test_failed_run_keeps_previous_output(dataset):
    dataset.add("a")
    cfg = dataset.config()
    ingest(cfg)
    before = sorted(p.name for p in Path(cfg.out_dir).iterdir())
    dataset.add_file("bad", "bad.mp4", b"")
    with pytest.raises(BadInput):
        ingest(dataset.config())
    after = sorted(p.name for p in Path(cfg.out_dir).iterdir())
    assert before == after and "a.npz" in after


def test_skip_mode_ingests_the_good_and_reports_the_bad(dataset):
    dataset.add("good")
    dataset.add_file("empty", "empty.mp4", b"")
    dataset.add("good")  # duplicate of the first
    dataset.rows.append({"id": "noprompt", "video": "good.mp4", "prompt": ""})
    cfg = dataset.config(on_bad_input="skip")
    report = ingest(cfg)
    assert report["ingested"] == ["good"]
    problems = {s["id"]: s["problem"] for s in report["skipped"]}
    assert set(problems) == {"empty", "good", "noprompt"}
    assert "duplicate id" in problems["good"] and "0 bytes" in problems["empty"]
    saved = json.loads((Path(cfg.out_dir) / "report.json").read_text())
    assert saved == report


def test_skip_mode_with_nothing_usable_fails(dataset):
    dataset.add_file("e", "e.mp4", b"")
    _assert_refused(dataset.config(on_bad_input="skip"), "no usable videos", "0 bytes")


def test_box_and_points_follow_the_resize_and_crop(dataset):
    frames = np.zeros((8, 40, 80, 3), np.uint8)
    frames[..., 0] = 200
    frames[..., 1] = np.linspace(0, 255, 80, dtype=np.uint8)  # colour, not grayscale
    dataset.add("wide", frames, box="30 10 50 30", points="40 20")
    cfg = dataset.config(n_frames=4, height=20, width=20)
    ingest(cfg)
    row = read_clip_manifest(cfg.out_dir).iloc[0]
    # 80x40 -> scale 0.5 -> 40x20, centre crop drops 10 px on the left
    assert row.box == "5 5 15 15" and row.points == "10 10"


def test_prompts_past_the_text_encoders_limit_are_reported_with_what_is_cut(caplog):
    from tasks.ingest.manifest import ManifestRow
    from tasks.ingest.stage import prompts_cut

    # the toy tokenizer reads 20 tokens (start + 18 words + end); its words are the toy world's
    short = ManifestRow(id="short", video=Path("s.mp4"), prompt="a red circle runs across a green meadow")
    words = "a red circle runs across a green meadow and a blue square jumps over a yellow lake and a pink star"
    long = ManifestRow(id="long", video=Path("l.mp4"), prompt=words)
    multi = ManifestRow(
        id="multi", video=Path("m.mp4"), prompt="a red circle", objects=[("a red circle", Path()), (words, Path())]
    )
    with caplog.at_level("WARNING"):
        cut = prompts_cut([short, long, multi], "base/toy/tokenizer")
    assert cut == {"long": "a pink star", "multi objects[1]": "a pink star"}  # the limit keeps start + 18 words
    assert "long: prompt has 23 tokens, the text encoder reads 20; cut: 'a pink star'" in caplog.text
    assert "multi: objects[1].prompt has 23 tokens" in caplog.text
    assert prompts_cut([long], None) == {}


def test_objects_with_their_own_prompts_and_masks_travel_to_the_clip(dataset):
    frames, truth = toy_video(0, size=32, n_frames=12)
    left, right = truth.copy(), truth.copy()
    left[..., 16:], right[..., :16] = False, False  # two "objects": the mask's halves
    for name, m in (("left", left), ("right", right)):
        write_mask_pngs(m, dataset.dir / "objects" / name)
    prompts = ["a red star runs across a sandy plain", "a pink square runs across a sandy plain"]
    dataset.add(
        "multi",
        frames,
        truth,
        objects=[{"prompt": p, "masks": f"objects/{n}"} for p, n in zip(prompts, ("left", "right"))],
    )
    dataset.add("single")
    cfg = dataset.config(n_frames=6)
    ingest(cfg)
    table = read_clip_manifest(cfg.out_dir).set_index("id", drop=False)
    assert json.loads(table.loc["multi", "object_prompts"]) == prompts and table.loc["single", "object_prompts"] == ""
    assert table.loc["multi", "mask_source"] == "user"
    indices = [int(i) for i in table.loc["multi", "frame_indices"].split()]
    np.testing.assert_array_equal(
        load_clip(f"{cfg.out_dir}/multi.npz")["object_masks"], np.stack([left, right])[:, indices]
    )
    assert "object_masks" not in load_clip(f"{cfg.out_dir}/single.npz")


@pytest.mark.parametrize(
    "objects, problem",
    [
        ([{"prompt": "a red star"}], r"objects\[0\] needs a prompt and a masks folder"),
        ([{"prompt": "a red star", "masks": "m", "colour": "red"}], r"objects\[0\]: unknown key\(s\) colour"),
        ("a red star", r"objects must be a YAML list"),
        (
            [{"prompt": "a red star", "masks": "../../../elsewhere"}],
            r"objects\[0\].masks path '../../../elsewhere' escapes",
        ),
    ],
)
def test_bad_objects_are_refused_naming_the_video_and_object(dataset, objects, problem):
    dataset.add("multi", objects=objects)
    with pytest.raises(BadInput, match=r"\(id 'multi'\): " + problem):
        ingest(dataset.config(n_frames=6))
    assert not (dataset.root / "clips").exists()


def test_masks_and_objects_together_are_refused(dataset):
    # the objects' union is the foreground; a second foreground would be silently dropped
    dataset.add("multi", masks="m", objects=[{"prompt": "a red star", "masks": "m"}])
    with pytest.raises(BadInput, match=r"\(id 'multi'\): give masks or objects \(each with its masks\), not both"):
        ingest(dataset.config(n_frames=6))
