"""No one request can kill the studio: every bound (frames, frame size, objects, keyframes, prompt
length, body size) is refused with a 422/413 naming the field and the bound before any mask is drawn,
and the server answers the next request. Each case here was a request that, before the bounds, ran
the server out of memory, held it for minutes, or answered with a 300-digit number."""

import socket

import pytest
import yaml

from tests.studio.conftest import files_under
from tests.studio.test_studio_uploads import state


def refused_at(answer, status: int, field: str, *words: str) -> str:
    assert answer.status_code == status, answer.text[:300]
    errors = answer.json()["errors"]
    found = [e for e in errors if e["field"] == field]
    assert found, errors
    message = found[0]["message"]
    for w in words:
        assert w in message, message
    return message


def still_answers(client) -> None:
    answer = client.post("/api/preview", json=state(client))
    assert answer.status_code == 200 and answer.json()["summary"].startswith("16 masks of 64x64")


def test_a_preview_of_100000_frames_is_refused_naming_the_bound(client):
    refused_at(client.post("/api/preview", json=state(client, n_frames=100_000)), 422, "n_frames", "100000", "128")
    still_answers(client)


def test_a_4096_frame_and_a_huge_size_are_refused_readably(client):
    refused_at(client.post("/api/preview", json=state(client, size=[4096, 4096])), 422, "size", "4096", "512")
    answer = client.post("/api/preview", json=state(client, size=[1e308, 64]))
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"].startswith("size")
    assert "0" * 20 not in answer.text
    still_answers(client)


def test_too_many_objects_are_refused_before_any_is_drawn(client):
    s = state(client)
    s["objects"] = s["objects"] * 9
    refused_at(client.post("/api/preview", json=s), 422, "objects", "9", "at most 8", "--max-objects")
    s["objects"] = s["objects"] * 600  # 5400 objects: past the body bound already (about 1 MB)
    answer = client.post("/api/preview", json=s)
    assert answer.status_code in (413, 422)
    still_answers(client)


def test_keyframes_prompt_scale_radius_and_far_coordinates_are_bounded(client):
    s = state(client)
    s["objects"][0]["path"]["points"] = [[k, 10, 10] for k in range(200)]
    refused_at(client.post("/api/preview", json={**s, "n_frames": 100}), 422, "objects.0.path", "200", "128")
    refused_at(client.post("/api/preview", json=state(client, prompt="a " * 400)), 422, "prompt", "800", "500")
    s = state(client)
    s["objects"][0]["scale"] = 1e9
    refused_at(client.post("/api/preview", json=s), 422, "objects.0.scale", "1e+09", "--max-scale")
    s = state(client)
    s["objects"][0]["mask"]["radius"] = 1e12
    refused_at(client.post("/api/preview", json=s), 422, "objects.0.mask", "1e+12")
    s = state(client)
    s["objects"][0]["path"]["points"][1][1] = 1e308
    message = refused_at(client.post("/api/preview", json=s), 422, "objects.0.path", "1e+308")
    assert "0" * 20 not in message
    still_answers(client)


def test_a_click_far_outside_the_frame_is_said_readably(client):
    import numpy as np

    from tests.studio.test_studio_uploads import png

    upload = client.post("/api/upload/image?field=first_frame", content=png(np.zeros((64, 64, 3), np.uint8)))
    image = upload.json()["upload"]
    answer = client.post("/api/cutout", json={"image": image, "x": 1e308, "y": 5, "field": "objects.0.mask"})
    message = refused_at(answer, 400, "objects.0.mask", "1e+308", "outside")
    assert "0" * 20 not in message


def test_a_body_over_the_limit_is_refused_announced_or_not(client):
    big = b'{"prompt": "' + b"x" * 400_000 + b'"}'
    refused_at(client.post("/api/preview", content=big), 413, "general", "the limit is 256 kB", "--max-body-kb")

    def chunks():  # no Content-Length: the body streams until the server stops it
        for _ in range(2000):
            yield b"x" * 1024

    answer = client.post("/api/preview", content=chunks(), headers={"content-type": "application/json"})
    refused_at(answer, 413, "general", "over 256 kB")
    still_answers(client)


def test_a_spec_file_past_the_bounds_is_refused_at_the_spec_field(client):
    spec = {
        "size": [64, 64],
        "n_frames": 100_000,
        "objects": [{"mask": "toy:circle", "path": {"type": "arc", "center": [32, 32], "radius": 9}}],
    }
    answer = client.post("/api/spec/load", json={"yaml": yaml.safe_dump(spec), "files": {}})
    refused_at(answer, 422, "spec", "n_frames", "100000", "128")
    still_answers(client)


def test_the_bounds_are_settings(tmp_path, monkeypatch):
    from studio.settings import parse_args

    monkeypatch.setenv("MASKMOTION_STUDIO_MAX_FRAMES", "300")
    settings = parse_args(["--max-side", "1024"])
    assert settings.bounds.max_frames == 300 and settings.bounds.max_side == 1024
    with pytest.raises(SystemExit):
        parse_args(["--max-objects", "0"])


@pytest.mark.slow
def test_the_server_survives_each_case_on_a_real_socket(bare_studio):
    """Over loopback, as a browser sends them: a body that never says its length included."""
    import httpx

    from studio.server import serving

    with serving(bare_studio) as url:
        host, port = url.split("//")[1].strip("/").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(b"POST /api/preview HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            s.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"x" * 65536
            sent, answer = 0, b""
            try:
                while sent < 64 << 20:  # 64 MB at most; the server answers long before
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                    s.settimeout(0.0)
                    try:
                        answer = s.recv(4096)
                    except BlockingIOError:
                        answer = b""
                    s.settimeout(30)
                    if answer:
                        break
            except (BrokenPipeError, ConnectionResetError):
                pass
            if not answer:
                s.settimeout(30)
                answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 8 << 20  # refused after the limit, not after the whole body
        with httpx.Client(base_url=url, timeout=60) as c:
            default = c.get("/api/config").json()["default_state"]
            for case in ({"n_frames": 100_000}, {"size": [4096, 4096]}):
                assert c.post("/api/preview", json={**default, **case}).status_code == 422
            assert c.post("/api/preview", json=default).status_code == 200


def test_a_refused_generate_writes_no_run_folder(client, bare_studio):
    data = bare_studio.state.studio.settings.data_dir
    for body in (state(client, prompt=""), state(client, prompt="x" * 600), state(client, n_frames=100_000)):
        assert client.post("/api/generate", json=body).status_code == 422
    assert files_under(data) == []
