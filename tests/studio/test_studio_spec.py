"""Page state <-> spec: what the page draws is what tasks.masks.sequences renders, both ways."""

import numpy as np
import pytest
import yaml
from PIL import Image

from studio.runs import load_state, mask_file, write_inputs
from studio.spec import PageState, Problems, page_extras, parse_state, render, sequence_problems, to_spec
from studio.uploads import Uploads
from tasks.common.io import read_mask_pngs, write_mask_pngs
from tasks.common.params import ConfigError
from tasks.masks.sequences import build_sequence, load_spec, main
from tests.studio.conftest import REPO


def drawn_mask(size=(64, 64)) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[30:38, 8:20] = True  # a bar, drawn left of centre
    mask[26:30, 10:14] = True
    return mask


def two_objects(upload_id: str) -> dict:
    """The README's example motion, the circle drawn by hand instead of a toy shape."""
    return {
        "size": [64, 64],
        "n_frames": 16,
        "prompt": "a red circle runs across a grassy meadow",
        "seed": 3,
        "steps": 10,
        "first_frame": {"source": "controlnet"},
        "objects": [
            {
                "label": "runner",
                "mask": {"source": "png", "upload": upload_id, "how": "drawn"},
                "path": {"type": "line", "start": [10, 52], "speed": 3, "direction_deg": 0},
                "hop": {"height": 10, "count": 2},
                "scale": [0.8, 1.2],
            },
            {
                "label": "star",
                "mask": {"source": "toy", "shape": "star", "radius": 6},
                "path": {
                    "type": "arc",
                    "center": [32, 30],
                    "radius": 18,
                    "start_deg": 180,
                    "end_deg": 360,
                    "easing": "ease_in_out",
                },
            },
        ],
    }


def test_page_state_to_spec_yaml_renders_the_same_masks_with_the_cli(tmp_path):
    uploads = Uploads(tmp_path / "uploads")
    state = parse_state(two_objects(uploads.store_mask(drawn_mask(), "objects.0.mask")))
    shown = np.logical_or.reduce(render(to_spec(state, mask_file), uploads.root))  # what the page previews
    run = write_inputs(tmp_path / "runs", state, uploads)

    main([str(run / "spec.yaml"), "--out", str(tmp_path / "cli")])  # python -m tasks.masks.sequences
    np.testing.assert_array_equal(read_mask_pngs(tmp_path / "cli"), shown)
    np.testing.assert_array_equal(read_mask_pngs(run / "sequences/motion"), shown)  # what generate reads
    assert shown.shape == (16, 64, 64) and shown.any(axis=(1, 2)).all()

    spec = yaml.safe_load((run / "spec.yaml").read_text())
    assert spec["objects"][0]["mask"].startswith("objects/") and (run / spec["objects"][0]["mask"]).is_file()
    manifest = yaml.safe_load((run / "sequences/manifest.yaml").read_text())
    assert manifest == {"sequences": [{"id": "motion", "prompt": state.prompt, "masks": "motion"}]}


def test_a_saved_spec_loads_back_into_the_same_page_state(tmp_path):
    uploads = Uploads(tmp_path / "uploads")
    original = parse_state(two_objects(uploads.store_mask(drawn_mask(), "objects.0.mask")))
    run = write_inputs(tmp_path / "runs", original, uploads)

    loaded = PageState.model_validate(load_state(tmp_path / "runs", run.name, uploads))
    assert loaded.objects[0].mask.upload == original.objects[0].mask.upload  # same pixels, same id
    assert to_spec(loaded, mask_file) == to_spec(original, mask_file)  # the same spec, defaults filled in
    assert page_extras(loaded) == page_extras(original)  # prompt, seed, steps, first frame, labels, mask sources


def test_the_readme_example_loads_into_the_page_and_renders_as_the_cli_does(client):
    text = (REPO / "examples/two_objects.yaml").read_text()
    answer = client.post("/api/spec/load", json={"yaml": text, "files": {}})
    assert answer.status_code == 200, answer.text
    state = answer.json()
    assert [o["mask"] for o in state["objects"]] == [
        {"source": "toy", "shape": "circle", "radius": 7.0},
        {"source": "toy", "shape": "star", "radius": 6.0},
    ]
    shown = client.post("/api/preview", json={**state, "prompt": "x"}).json()
    assert shown["errors"] == [] and len(shown["objects"]) == 2
    from studio.preview import unpack

    union = np.logical_or.reduce([unpack(o["masks"], (64, 64)).astype(bool) for o in shown["objects"]])
    np.testing.assert_array_equal(union, build_sequence(load_spec(REPO / "examples/two_objects.yaml")))


def test_the_per_object_prompts_example_loads_into_the_page_with_each_objects_words(client):
    example = REPO / "examples/two_prompts.yaml"
    spec = load_spec(example)
    answer = client.post("/api/spec/load", json={"yaml": example.read_text(), "files": {}})
    assert answer.status_code == 200, answer.text
    state = answer.json()
    assert state["prompt"] == spec.prompt  # the scene
    assert [o["prompt"] for o in state["objects"]] == spec.object_prompts
    assert to_spec(parse_state(state), mask_file) == spec  # and back: the same spec


def test_spec_messages_are_the_yaml_checks_own_at_the_same_keys(tmp_path):
    bad = two_objects("0" * 16)
    bad["objects"][1]["path"] = {"type": "keyframes", "points": [[5, 1, 1], [2, 3, 3]]}
    bad["n_frames"] = 1
    with pytest.raises(Problems) as page:
        to_spec(parse_state(bad), mask_file)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        yaml.safe_dump({"size": [64, 64], "n_frames": 1, "objects": [{"mask": "toy:star", **bad["objects"][1]}]})
    )
    with pytest.raises(ConfigError) as cli:
        load_spec(spec_file)
    said = {p["field"]: p["message"] for p in page.value.problems}
    assert set(said) == {"n_frames", "objects.1.path.keyframes"}
    for field, message in said.items():
        assert f"{field.replace('objects.1', 'objects.0')}: {message}" in str(cli.value)


def test_what_generate_refuses_is_said_before_it_runs_in_its_words(tmp_path):
    from tasks.generate.jobs import Job, read_sequence

    masks = np.zeros((4, 16, 16), bool)
    masks[[0, 1, 3], 4:8, 4:8] = True  # frame 2 empty
    write_mask_pngs(masks, tmp_path / "m")
    with pytest.raises(ValueError, match="frame 2 is all background") as generate:
        read_sequence(Job("v", "s", "p", str(tmp_path / "m"), 0))
    said = sequence_problems([masks])
    assert [p["message"] for p in said] == ["frame 2 is all background (an empty mask has no object to follow)"]
    assert said[0]["message"] in str(generate.value)
    off = sequence_problems([masks, np.zeros_like(masks)])
    assert off[0] == {
        "field": "objects.1.path",
        "message": "the path keeps the object outside the frame in every frame",
    }


def test_a_png_mask_is_named_by_upload_id_never_by_path(tmp_path):
    state = two_objects("../../etc/passwd")
    with pytest.raises(Problems) as err:
        parse_state(state)
    assert err.value.problems[0]["field"] == "objects.0.mask.png.upload"
    Image.fromarray(drawn_mask().astype(np.uint8) * 255).save(tmp_path / "x.png")
    state["objects"][0]["mask"] = {"source": "png", "upload": str(tmp_path / "x.png")}
    with pytest.raises(Problems):
        parse_state(state)


def test_per_object_prompts_go_into_the_spec_and_the_sequences_manifest(tmp_path):
    from tasks.generate.config import GenerateConfig
    from tasks.generate.jobs import plan_jobs

    uploads = Uploads(tmp_path / "uploads")
    raw = two_objects(uploads.store_mask(drawn_mask(), "objects.0.mask"))
    raw["prompt"] = "a red circle a yellow star runs across a grassy meadow"
    raw["objects"][0]["prompt"] = "a red circle runs across a grassy meadow"
    raw["objects"][1]["prompt"] = "a yellow star runs across a grassy meadow"
    state = parse_state(raw)
    run = write_inputs(tmp_path / "runs", state, uploads)

    spec = load_spec(run / "spec.yaml")  # the CLI's spec: the scene and each object's words
    assert spec.prompt == raw["prompt"] and spec.object_prompts == [o["prompt"] for o in raw["objects"]]
    (job,) = plan_jobs(GenerateConfig(sequences=str(run / "sequences"), seeds=[0]))
    assert job.prompt == raw["prompt"] and list(job.object_prompts) == spec.object_prompts
    shown = render(to_spec(state, mask_file), uploads.root)
    for k, folder in enumerate(job.object_masks):
        np.testing.assert_array_equal(read_mask_pngs(folder), shown[k])
    loaded = PageState.model_validate(load_state(tmp_path / "runs", run.name, uploads))
    assert [o.prompt for o in loaded.objects] == spec.object_prompts

    raw["prompt"] = ""  # object prompts need the scene: said as the spec says it
    with pytest.raises(Problems, match="need the sequence's prompt"):
        to_spec(parse_state(raw), mask_file)
