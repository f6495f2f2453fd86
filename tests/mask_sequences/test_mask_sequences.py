"""Mask sequences: the drawn object goes where the spec says, at the size it says."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tasks.common.io import read_mask_pngs
from tasks.common.params import ConfigError
from tasks.masks.sequences import (
    SequenceSpec,
    build_objects,
    build_sequence,
    load_spec,
    main,
    path_centres,
    scale_schedule,
    write_sequence,
)

REPO = Path(__file__).resolve().parents[2]


def centroid(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def spec(**obj):
    return SequenceSpec.model_validate({"size": [64, 64], "n_frames": 8, "objects": [obj]})


def test_line_by_speed_moves_the_centroid_that_many_pixels_per_frame():
    s = spec(mask="toy:square", radius=6, path={"type": "line", "start": [12, 30], "speed": 4, "direction_deg": 0})
    masks = build_sequence(s)
    c = np.array([centroid(m) for m in masks])
    np.testing.assert_allclose(np.diff(c[:, 0]), 4, atol=0.6)
    np.testing.assert_allclose(c[:, 1], c[0, 1], atol=0.6)
    np.testing.assert_allclose(c[0], [12, 30], atol=1.0)


def test_direction_90_moves_down():
    p = path_centres(
        spec(mask="toy:circle", path={"type": "line", "start": [10, 10], "speed": 2, "direction_deg": 90})
        .objects[0]
        .path,
        5,
    )
    np.testing.assert_allclose(p, [[10, 10], [10, 12], [10, 14], [10, 16], [10, 18]], atol=1e-9)


def test_keyframes_hit_their_frames_and_ease():
    s = spec(
        mask="toy:circle",
        path={"type": "keyframes", "points": [[0, 10, 10], [4, 50, 10], [7, 50, 50]], "easing": "ease_in_out"},
    )
    p = path_centres(s.objects[0].path, 8)
    np.testing.assert_allclose(p[[0, 4, 7]], [[10, 10], [50, 10], [50, 50]], atol=1e-9)
    steps = np.diff(p[:5, 0])
    assert steps[0] < steps[1] and steps[-1] < steps[-2]  # slow in, slow out


def test_arc_stays_on_its_circle():
    s = spec(
        mask="toy:circle", path={"type": "arc", "center": [32, 32], "radius": 20, "start_deg": 180, "end_deg": 360}
    )
    p = path_centres(s.objects[0].path, 8)
    np.testing.assert_allclose(np.hypot(*(p - 32).T), 20, atol=1e-9)
    np.testing.assert_allclose(p[[0, -1]], [[12, 32], [52, 32]], atol=1e-9)


def test_scale_schedule_grows_the_area():
    s = spec(mask="toy:circle", radius=5, path={"type": "line", "start": [32, 32], "end": [32, 32]}, scale=[1.0, 2.0])
    areas = build_sequence(s).sum(axis=(1, 2))
    assert np.all(np.diff(areas) >= 0) and areas[-1] / areas[0] == pytest.approx(4.0, rel=0.15)
    assert scale_schedule([1, 2, 3], 3).tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="3 values for 4 frames"):
        scale_schedule([1, 2, 3], 4)


def test_hop_lifts_the_object_between_landings():
    s = spec(
        mask="toy:circle",
        radius=4,
        path={"type": "line", "start": [10, 50], "end": [54, 50]},
        hop={"height": 10, "count": 1},
    )
    ys = np.array([centroid(m)[1] for m in build_sequence(s)])
    assert ys[0] == pytest.approx(50, abs=1) and ys[-1] == pytest.approx(50, abs=1)
    assert ys.min() < 42


def test_objects_leaving_the_frame_are_clipped():
    s = spec(mask="toy:square", radius=6, path={"type": "line", "start": [50, 30], "end": [90, 30]})
    masks = build_sequence(s)
    areas = masks.sum(axis=(1, 2))
    assert areas[0] > 0 and areas[-1] == 0 and np.all(np.diff(areas) <= 0)


def test_several_objects_union(tmp_path):
    drawn = np.zeros((20, 10), np.uint8)
    drawn[2:18, 3:7] = 255
    Image.fromarray(drawn).save(tmp_path / "bar.png")
    s = SequenceSpec.model_validate(
        {
            "size": [64, 64],
            "n_frames": 4,
            "objects": [
                {"mask": "bar.png", "path": {"type": "line", "start": [10, 32], "end": [10, 32]}},
                {"mask": "toy:circle", "radius": 5, "path": {"type": "line", "start": [50, 32], "end": [50, 20]}},
            ],
        }
    )
    masks = build_sequence(s, tmp_path)
    assert masks[:, :, :32].sum(axis=(1, 2)).tolist() == [16 * 4] * 4  # the drawn bar, unscaled
    assert masks[:, :, 32:].sum() > 0


def test_bad_specs_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "n_frames": 1,
                "objects": [{"mask": "toy:star", "path": {"type": "line", "start": [0, 0]}, "colour": "red"}],
            }
        )
    )
    with pytest.raises(ConfigError) as info:
        load_spec(bad)
    msg = str(info.value)
    assert "n_frames" in msg and "objects.0.colour" in msg and "exactly one of 'end' or 'speed'" in msg
    empty = np.zeros((8, 8), np.uint8)
    Image.fromarray(empty).save(tmp_path / "empty.png")
    with pytest.raises(ValueError, match="objects.0: empty.png: the base mask is empty"):
        build_sequence(spec(mask="empty.png", path={"type": "line", "start": [0, 0], "speed": 1}), tmp_path)


def test_command_line_writes_pngs_and_gif(tmp_path):
    (tmp_path / "spec.yaml").write_text(
        yaml.safe_dump(
            {
                "size": [32, 48],
                "n_frames": 6,
                "objects": [{"mask": "toy:star", "radius": 5, "path": {"type": "line", "start": [8, 16], "speed": 5}}],
            }
        )
    )
    main([str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "seq"), "--gif", str(tmp_path / "p.gif")])
    masks = read_mask_pngs(tmp_path / "seq")
    assert masks.shape == (6, 32, 48)
    np.testing.assert_array_equal(masks, build_sequence(load_spec(tmp_path / "spec.yaml"), tmp_path))
    assert (tmp_path / "p.gif").stat().st_size > 0


def two_prompted_objects(**scene):
    return {
        "size": [32, 48],
        "n_frames": 5,
        **scene,
        "objects": [
            {
                "mask": "toy:circle",
                "radius": 4,
                "prompt": "a red circle",
                "path": {"type": "line", "start": [8, 16], "end": [40, 16]},
            },
            {
                "mask": "toy:square",
                "radius": 4,
                "prompt": "a yellow square",
                "path": {"type": "line", "start": [40, 16], "end": [8, 16]},
            },
        ],
    }


def test_object_prompts_write_each_objects_masks_and_a_manifest(tmp_path):
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(two_prompted_objects(prompt="a grassy meadow")))
    main([str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "crossing")])
    manifest = yaml.safe_load((tmp_path / "crossing/manifest.yaml").read_text())
    assert manifest == {
        "sequences": [
            {
                "id": "crossing",
                "masks": ".",
                "prompt": "a grassy meadow",
                "objects": [
                    {"prompt": "a red circle", "masks": "objects/0"},
                    {"prompt": "a yellow square", "masks": "objects/1"},
                ],
            }
        ]
    }
    objects = build_objects(load_spec(tmp_path / "spec.yaml"))
    for k in (0, 1):
        np.testing.assert_array_equal(read_mask_pngs(tmp_path / f"crossing/objects/{k}"), objects[k])
    union = read_mask_pngs(tmp_path / "crossing")
    np.testing.assert_array_equal(union, objects[0] | objects[1])
    assert (objects[0] & objects[1])[2].any()  # they cross in the middle frame: the masks overlap there


def test_a_spec_without_prompts_writes_only_the_union(tmp_path):
    data = two_prompted_objects()
    for obj in data["objects"]:
        del obj["prompt"]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    main([str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "seq")])
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [f"{i:04d}.png" for i in range(5)]


def test_object_prompts_need_a_scene_and_an_object_without_one_takes_it(tmp_path):
    with pytest.raises(ValueError, match="need the sequence's prompt"):
        SequenceSpec.model_validate(two_prompted_objects())
    data = two_prompted_objects(prompt="a grassy meadow")
    own = data["objects"][0]["prompt"]
    del data["objects"][1]["prompt"]
    spec = SequenceSpec.model_validate(data)  # was refused: "either every object has a prompt or none"
    assert spec.object_prompts == [own, "a grassy meadow"]
    row = write_sequence(spec, tmp_path / "seq", tmp_path)
    assert [o["prompt"] for o in row["objects"]] == [own, "a grassy meadow"]


def test_the_two_prompts_example_crosses_and_its_manifest_gives_each_object_its_words(tmp_path):
    from tasks.common.toy import COLOURS
    from tasks.generate.config import GenerateConfig
    from tasks.generate.jobs import plan_jobs

    example = REPO / "examples/two_prompts.yaml"
    main([str(example), "--out", str(tmp_path / "two_prompts")])
    spec = load_spec(example)
    (job,) = plan_jobs(GenerateConfig(sequences=str(tmp_path / "two_prompts"), seeds=[0]))
    assert job.prompt == spec.prompt and list(job.object_prompts) == spec.object_prompts
    colours = []
    for k, (obj, prompt) in enumerate(zip(spec.objects, job.object_prompts)):
        _, colour, shape, *_ = prompt.split()
        assert colour in COLOURS and f"toy:{shape}" == obj.mask, f"objects.{k}'s prompt names another object"
        colours.append(colour)
    assert len(set(colours)) == 2  # two colours: each object's words must show where they act
    first, second = (read_mask_pngs(folder) for folder in job.object_masks)
    starts, ends = (centroid(first[t])[0] - centroid(second[t])[0] for t in (0, -1))
    assert starts < 0 < ends  # the first starts left of the second and ends right of it: they cross
