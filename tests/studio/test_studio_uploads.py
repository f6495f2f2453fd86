"""Bad input gets a clear message and writes nothing; no path from the browser reaches the disk unchecked."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.studio.conftest import files_under


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def state(client, **changes) -> dict:
    return {**client.get("/api/config").json()["default_state"], **changes}


def refused(answer, status: int, field: str, words: str) -> None:
    assert answer.status_code == status, answer.text
    [error] = answer.json()["errors"]
    assert error["field"] == field and words in error["message"], error


@pytest.fixture
def data(bare_studio):
    return bare_studio.state.studio.settings.data_dir


def test_a_file_that_is_not_an_image_is_refused_and_nothing_is_written(client, data):
    answer = client.post("/api/upload/image?field=first_frame", content=b"#!/bin/sh\necho hello\n")
    refused(answer, 400, "first_frame", "not an image file")
    refused(client.post("/api/upload/mask?field=objects.0.mask", content=b""), 400, "objects.0.mask", "empty")
    assert files_under(data) == []


def test_an_upload_past_the_limit_is_refused_before_it_is_read_whole(client, data):
    big = png(np.random.default_rng(0).integers(0, 255, (256, 256, 3), np.uint8))  # ~200 kB, limit 0.05 MB
    answer = client.post("/api/upload/image?field=first_frame", content=big)
    refused(answer, 413, "first_frame", "the limit is 0.05 MB")
    assert files_under(data) == []


def test_empty_full_and_grey_masks_are_refused(client, data):
    field = "objects.0.mask"
    for pixels, words in (
        (np.zeros((64, 64), np.uint8), "the base mask is empty"),
        (np.full((64, 64), 255, np.uint8), "all foreground"),
        (np.random.default_rng(0).integers(40, 200, (64, 64), np.uint8), "not a binary mask"),
    ):
        refused(client.post(f"/api/upload/mask?field={field}", content=png(pixels)), 400, field, words)
    assert files_under(data) == []


def test_a_good_image_is_fitted_to_the_frame_and_stored_by_content(client, data):
    answer = client.post("/api/upload/image?height=64&width=64", content=png(np.zeros((90, 160, 3), np.uint8)))
    assert answer.status_code == 200 and "fitted from 160x90 to 64x64" in answer.json()["note"]
    [stored] = files_under(data / "uploads/images")
    assert stored == f"{answer.json()['upload']}.png"
    assert Image.open(data / "uploads/images" / stored).size == (64, 64)


def test_a_path_entirely_off_the_frame_is_said_and_generate_writes_nothing(client, data):
    s = state(client, prompt="a red circle")
    s["objects"][0]["path"] = {"type": "line", "start": [-300, -300], "end": [-200, -300]}
    shown = client.post("/api/preview", json=s).json()
    assert {"field": "objects.0.path", "message": "the path keeps the object outside the frame in every frame"} in (
        shown["errors"]
    )
    answer = client.post("/api/generate", json=s)
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.json()["errors"]}
    assert {"objects.0.path", "objects", "generate"} <= fields  # and there is no checkpoint to generate with
    assert files_under(data) == []


def test_too_few_frames_and_a_size_the_model_cannot_make_are_said_at_their_fields(client):
    refused(client.post("/api/preview", json=state(client, n_frames=1)), 422, "n_frames", "greater than or equal to 2")
    s = state(client)
    s["objects"][0]["path"]["points"] = [[0, 1, 1], [0, 2, 2]]
    refused(client.post("/api/preview", json=s), 422, "objects.0.path.keyframes", "keyframe frames must increase")


def test_paths_typed_in_the_browser_are_refused(client, data, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(np.full((8, 8), 255, np.uint8)))
    for url in (
        "/api/uploads/objects/..%2F..%2F..%2Fsecret.png",
        f"/api/uploads/objects/{'%2E%2E%2F' * 3}secret",
        "/api/uploads/../../etc/passwd",
        "/api/runs/..%2F..%2Fetc/state",
        "/api/runs/20261203T000000Z-abcdef/files/..%2F..%2Fparams.yaml",
        "/api/runs/20261203T000000Z-abcdef/files/spec.yaml",
    ):
        answer = client.get(url)
        assert answer.status_code == 404, (url, answer.text)
        assert answer.headers["content-type"].startswith("application/json")
    spec = f"objects: [{{mask: {secret}, path: {{type: line, start: [1, 1], speed: 1}}}}]"
    refused(client.post("/api/spec/load", json={"yaml": spec, "files": {}}), 422, "spec", "choose secret.png together")
    spec = "objects: [{mask: ../../secret.png, path: {type: line, start: [1, 1], speed: 1}}]"
    answer = client.post("/api/spec/load", json={"yaml": spec, "files": {"secret.png": "../../secret"}})
    assert answer.status_code == 404
    refused(client.post("/api/clip-frame", json={"clip": "../../secret", "frame": 0}), 404, "file", "no clip manifest")
    refused(client.post("/api/cutout", json={"image": "../../secret", "x": 1, "y": 1}), 404, "images", "not an upload")
    assert files_under(data) == []


def test_clip_ids_come_from_the_ingest_manifest_only(bare_studio, tmp_path):
    from fastapi.testclient import TestClient

    from tasks.common.io import save_clip

    clips = bare_studio.state.studio.settings.clips_dir
    clips.mkdir()
    frames = np.zeros((3, 48, 48, 3), np.uint8)
    frames[:, 10:20, 10:20] = (215, 35, 35)
    save_clip(clips / "toy-000.npz", frames)
    (clips / "manifest.csv").write_text("id,clip,prompt\ntoy-000,toy-000.npz,a red square\nevil,../../x.npz,no\n")
    client = TestClient(bare_studio)
    assert client.get("/api/config").json()["clips"] == ["toy-000", "evil"]
    answer = client.post("/api/clip-frame", json={"clip": "toy-000", "frame": 2, "size": [64, 64]})
    assert answer.status_code == 200 and "fitted from 48x48 to 64x64" in answer.json()["note"]
    refused(client.post("/api/clip-frame", json={"clip": "toy-000", "frame": 3}), 400, "first_frame", "frames 0 to 2")
    refused(client.post("/api/clip-frame", json={"clip": "evil", "frame": 0}), 400, "first_frame", "not a file under")
    refused(client.post("/api/clip-frame", json={"clip": "nope", "frame": 0}), 400, "first_frame", "no ingested clip")

    click = {"image": answer.json()["upload"], "x": 20, "y": 20, "field": "objects.0.mask"}
    cut = client.post("/api/cutout", json=click)
    assert cut.status_code == 200 and "GrabCut" in cut.json()["method"]
    mask = np.asarray(Image.open(clips.parent / "studio/uploads/objects" / f"{cut.json()['upload']}.png")) > 0
    ys, xs = np.nonzero(mask)
    assert 120 < mask.sum() < 250 and 13 <= xs.min() and xs.max() <= 27  # the 10x10 square, fitted to 64x64
    assert ys.min() >= 13


def test_the_server_binds_this_machine_only_unless_told(monkeypatch):
    from studio.settings import is_loopback, parse_args

    monkeypatch.delenv("MASKMOTION_STUDIO_HOST", raising=False)
    assert parse_args([]).host == "127.0.0.1"
    assert parse_args(["--host", "0.0.0.0"]).host == "0.0.0.0"
    monkeypatch.setenv("MASKMOTION_STUDIO_HOST", "192.168.1.5")
    assert parse_args([]).host == "192.168.1.5"
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
