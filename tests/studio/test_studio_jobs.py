"""The studio on the tiny world's checkpoint, through its API: a visible queue, cancel (nothing kept),
refusals that write nothing, and the warnings a person needs (a first frame from another world, a
cut-out that kept a speck)."""

import time

import numpy as np
import pytest

from tests.studio.conftest import write_params
from tests.studio.test_studio_uploads import png

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_client(tiny_world, tiny_run, tmp_path_factory):
    from fastapi.testclient import TestClient

    from studio.app import create_app
    from studio.settings import Settings
    from tests.tiny_world import tiny_generate_config

    root = tmp_path_factory.mktemp("studio-jobs")
    settings = Settings(
        data_dir=root / "data",
        params=write_params(root / "params.yaml", tiny_generate_config(tiny_world, tiny_run).model_dump()),
        clips_dir=tiny_world / "data/clips",
        use_deployment=False,
        max_queued=2,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def runs_on_disk(client) -> list[str]:
    data = client.app.state.studio.settings.data_dir
    return sorted(p.name for p in data.iterdir() if p.is_dir() and p.name != "uploads")


def wait_for(client, job: str, states: tuple[str, ...], timeout_s: float = 180) -> dict:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        snap = client.get(f"/api/jobs/{job}").json()
        if snap["state"] in states:
            return snap
        time.sleep(0.1)
    raise AssertionError(f"job {job} never reached {states}: {snap}")


def long_state(client, **changes) -> dict:
    s = client.get("/api/config").json()["default_state"]
    return {**s, "prompt": "a red circle runs", "steps": 50, "n_frames": 128, **changes}  # long enough to cancel


def test_jobs_queue_are_listed_refused_past_the_bound_and_cancelled_leaving_nothing(tiny_client):
    client = tiny_client
    first = client.post("/api/generate", json=long_state(client)).json()
    second = client.post("/api/generate", json=long_state(client, seed=1)).json()
    queue = client.get("/api/jobs").json()
    assert [(j["id"], j["position"]) for j in queue] == [(first["job"], 0), (second["job"], 1)]
    assert len(runs_on_disk(client)) == 2

    third = client.post("/api/generate", json=long_state(client, seed=2))
    assert third.status_code == 422 and "--max-queued" in third.json()["errors"][0]["message"]
    assert len(runs_on_disk(client)) == 2  # the refused request wrote no run folder

    waiting = client.post(f"/api/jobs/{second['job']}/cancel").json()
    assert waiting["state"] == "cancelled" and second["run"] not in runs_on_disk(client)

    wait_for(client, first["job"], ("denoising",))
    assert client.post(f"/api/jobs/{first['job']}/cancel").json()["state"] in ("cancelling", "cancelled")
    done = wait_for(client, first["job"], ("cancelled", "done", "failed"))
    assert done["state"] == "cancelled", done
    assert runs_on_disk(client) == [] and client.get("/api/runs").json() == []
    assert client.get("/api/jobs").json() == []

    # the queue goes on: a short video after the cancelled ones is generated whole
    short = client.post("/api/generate", json=long_state(client, steps=2)).json()
    assert wait_for(client, short["job"], ("done", "failed"))["state"] == "done"
    assert client.post(f"/api/jobs/{short['job']}/cancel").status_code == 409
    assert runs_on_disk(client) == [short["run"]]


def test_a_first_frame_from_another_world_is_warned_a_toy_clip_frame_is_not(tiny_client):
    from skimage import data as pictures

    client = tiny_client
    s = client.get("/api/config").json()["default_state"]
    clip = client.get("/api/config").json()["clips"][0]
    toy = client.post("/api/clip-frame", json={"clip": clip, "frame": 0, "size": s["size"]}).json()["upload"]
    photo = client.post("/api/upload/image?height=32&width=32&field=first_frame", content=png(pictures.astronaut()))
    for upload, warned in ((toy, False), (photo.json()["upload"], True)):
        first = {"source": "image", "upload": upload, "origin": "test"}
        warnings = client.post("/api/preview", json={**s, "first_frame": first}).json()["warnings"]
        said = [w["message"] for w in warnings if w["field"] == "first_frame"]
        assert bool(said) == warned, said
        if warned:
            assert "trained on another world" in said[0] and "clips" in said[0]


def test_a_cut_out_that_keeps_a_speck_is_warned(tiny_client):
    client = tiny_client
    image = np.zeros((32, 32, 3), np.uint8)
    image[10:12, 10:12] = (220, 40, 40)  # a 2x2 red speck on black
    upload = client.post("/api/upload/image?height=32&width=32&field=first_frame", content=png(image)).json()["upload"]
    answer = client.post("/api/cutout", json={"image": upload, "x": 10.5, "y": 10.5, "field": "objects.0.mask"}).json()
    [warning] = answer["warnings"]
    assert warning["field"] == "objects.0.mask" and "only 4 pixel(s)" in warning["message"]
    big = np.zeros((32, 32, 3), np.uint8)
    big[8:24, 8:24] = (220, 40, 40)
    upload = client.post("/api/upload/image?height=32&width=32&field=first_frame", content=png(big)).json()["upload"]
    answer = client.post("/api/cutout", json={"image": upload, "x": 15, "y": 15, "field": "objects.0.mask"}).json()
    assert answer["warnings"] == []
