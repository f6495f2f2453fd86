"""The studio in a real browser (Debian's Chromium, headless, driven by Playwright) on the tiny world:
draw a mask, set two keyframes, see the preview, generate, watch the video play, read its IoU; and a
bad file refused on the page."""

import time

import pytest

from tests.studio.conftest import files_under, write_params

pytestmark = pytest.mark.slow

PLAYING = "(() => { const v = document.querySelector('#result-video'); return v.readyState >= 2 && !v.paused; })()"


@pytest.fixture(scope="module")
def studio_url(tiny_world, tiny_run, tmp_path_factory):
    """The studio on the tiny world's trained checkpoint (32x32 frames, 2 denoising steps), on a free port."""
    from studio.app import create_app
    from studio.server import serving
    from studio.settings import Settings
    from tests.tiny_world import tiny_generate_config

    root = tmp_path_factory.mktemp("studio")
    generate = tiny_generate_config(tiny_world, tiny_run).model_dump()
    settings = Settings(
        data_dir=root / "data",
        params=write_params(root / "params.yaml", generate),
        clips_dir=tiny_world / "data/clips",
        max_upload_mb=1,
        use_deployment=False,
    )
    app = create_app(settings)
    with serving(app) as url:
        yield url, settings.data_dir


@pytest.fixture
def page(studio_url):
    from playwright.sync_api import sync_playwright

    from studio.server import chromium

    with sync_playwright() as p, chromium(p) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(studio_url[0])
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        yield page
        assert not errors, f"the page raised: {errors}"


def at(page, x: float, y: float) -> tuple[float, float]:
    """Screen coordinates of video pixel (x, y) on the canvas."""
    box = page.locator("#canvas").bounding_box()
    side = page.evaluate("window.studio.state.size[1]")
    return box["x"] + (x + 0.5) * box["width"] / side, box["y"] + (y + 0.5) * box["width"] / side


def test_draw_a_mask_set_two_keyframes_generate_and_watch_it(page, studio_url):
    page.check("input[name=tool][value=brush]")
    page.mouse.move(*at(page, 6, 14))
    page.mouse.down()
    for x in range(6, 13):
        page.mouse.move(*at(page, x, 14 + x % 2))
    page.mouse.up()
    page.wait_for_function("window.studio.state.objects[0].mask.how === 'drawn'")
    assert page.inner_text("[data-testid=mask-how]") == "drawn with the brush"

    page.check("input[name=tool][value=path]")
    page.locator("#scrubber").fill("0")
    page.mouse.click(*at(page, 8, 10))
    page.locator("#scrubber").fill("15")
    page.mouse.click(*at(page, 24, 22))
    points = page.evaluate("window.studio.state.objects[0].path.points")
    assert [p[0] for p in points] == [0, 15]
    assert [round(v) for v in points[0][1:]] == [8, 10] and [round(v) for v in points[1][1:]] == [24, 22]
    assert page.locator("[data-testid=keyframes-0] tr").count() == 3  # header + the two keyframes

    page.wait_for_function("document.querySelector('#preview-summary').textContent.startsWith('16 masks of 32x32')")
    assert page.get_attribute("#preview-gif", "src").startswith("data:image/gif;base64,")
    assert page.get_attribute("#preview-box", "data-state") == "ok"

    t0 = time.perf_counter()
    page.click("#generate")
    page.wait_for_selector("#result-iou[data-iou]", timeout=120_000)
    page.wait_for_function(PLAYING, timeout=30_000)
    seconds = time.perf_counter() - t0
    first = page.evaluate("document.querySelector('#result-video').currentTime")
    page.wait_for_function(f"document.querySelector('#result-video').currentTime !== {first}", timeout=10_000)
    iou = float(page.get_attribute("#result-iou", "data-iou"))
    assert 0.0 <= iou <= 1.0 and "IoU against the drawn masks" in page.inner_text("#result-iou")
    assert page.evaluate("document.querySelector('#result-video').duration") == pytest.approx(2.0, abs=0.2)
    print(f"Generate -> playing 16-frame tiny video: {seconds:.1f} s")

    run = page.evaluate("document.querySelector('#run-list').value")
    folder = studio_url[1] / run
    for name in ("spec.yaml", "studio.yaml", "meta.json", "outputs/motion-s0/video.mp4", "outputs/manifest.csv"):
        assert (folder / name).is_file(), name


def test_a_bad_file_gets_a_message_on_the_page_and_writes_nothing(page, studio_url):
    before = files_under(studio_url[1] / "uploads") if (studio_url[1] / "uploads").is_dir() else []
    page.check("input[name=first-source][value=upload]")
    text = {"name": "notes.txt", "mimeType": "image/png", "buffer": b"not a picture"}
    page.set_input_files("#first-file", files=[text])
    message = page.locator(".err[data-field=first_frame] p")
    message.wait_for(timeout=10_000)
    assert "not an image file" in message.inner_text()

    big = {"name": "huge.png", "mimeType": "image/png", "buffer": b"\x89PNG" + bytes(2 << 20)}
    page.set_input_files("#first-file", files=[big])
    page.wait_for_function("document.querySelector('.err[data-field=first_frame] p').textContent.includes('limit')")
    assert "the limit is 1 MB" in message.inner_text()
    assert page.evaluate("window.studio.state.first_frame.source") == "controlnet"
    after = files_under(studio_url[1] / "uploads") if (studio_url[1] / "uploads").is_dir() else []
    assert after == before


def test_an_object_prompt_typed_on_the_page_reaches_the_spec(page):
    field = page.locator("[data-testid=object-prompt-0]")
    field.fill("a red circle runs across a grassy meadow")
    page.fill("#prompt", "a red circle runs across a grassy meadow")
    assert page.evaluate("window.studio.state.objects[0].prompt") == "a red circle runs across a grassy meadow"
    page.wait_for_function("document.querySelector('#preview-box').dataset.state === 'ok'")
    # the page's state is what the server turns into a spec: the object's words are a spec key there
    from studio.spec import parse_state, spec_dict

    spec = spec_dict(parse_state(page.evaluate("window.studio.state")), lambda upload: f"objects/{upload}.png")
    assert spec["objects"][0]["prompt"] == "a red circle runs across a grassy meadow"
    assert spec["prompt"] == "a red circle runs across a grassy meadow"


def test_the_per_object_prompts_example_loaded_on_the_page_generates_with_each_objects_words(page, studio_url):
    import json

    from tests.studio.conftest import REPO

    page.fill("#prompt", "words typed before loading")
    page.set_input_files("#spec-file", files=[str(REPO / "examples/two_prompts.yaml")])
    page.wait_for_function("window.studio.state.objects.length === 2 && window.studio.state.objects[1].prompt !== ''")
    assert page.input_value("#prompt") == "a red circle runs across a grassy meadow"  # the spec's scene wins
    assert page.input_value("[data-testid=object-prompt-0]") == "a red circle runs across a grassy meadow"
    assert page.input_value("[data-testid=object-prompt-1]") == "a yellow square runs across a grassy meadow"

    page.click("#generate")
    page.wait_for_selector("#result-iou[data-iou]", timeout=120_000)
    run = page.evaluate("document.querySelector('#run-list').value")
    meta = json.loads((studio_url[1] / run / "outputs/motion-s0/meta.json").read_text())
    assert meta["prompt"] == "a red circle runs across a grassy meadow"
    assert meta["object_prompts"] == [
        "a red circle runs across a grassy meadow",
        "a yellow square runs across a grassy meadow",
    ]


def test_a_refused_generate_is_said_in_the_generate_box_which_goes_back_to_ready(page, studio_url):
    before = files_under(studio_url[1])
    page.fill("#prompt", "")
    page.click("#generate")
    box = page.locator(".err[data-field=generate] p")
    box.first.wait_for(timeout=10_000)
    assert "prompt: empty prompt" in box.first.inner_text()
    assert page.inner_text("#progress-text") == "ready" and page.is_enabled("#generate")
    assert "empty prompt" in page.inner_text(".err[data-field=prompt]")  # and at its own field
    page.fill("#prompt", "a red circle runs")
    page.wait_for_function("document.querySelector('.err[data-field=prompt]').textContent === ''")
    assert files_under(studio_url[1]) == before  # nothing written for a refusal


def test_an_object_without_a_prompt_takes_the_scenes_and_the_preview_follows_edits(page):
    page.click("#add-object")
    page.fill("[data-testid=object-prompt-0]", "a red circle runs across a grassy meadow")
    page.fill("#prompt", "a grassy meadow")
    page.wait_for_function("document.querySelector('#preview-box').dataset.state === 'ok'")
    assert page.inner_text(".err[data-field='objects.1.prompt']") == ""
    x = page.locator("[data-path='objects.1.path.points.0.1']")
    x.fill("5")
    page.wait_for_function("window.studio.preview?.objects[1]?.centres[0][0] === 5")
    assert page.get_attribute("#preview-box", "data-state") == "ok"


def test_stale_errors_are_cleared_and_a_specs_errors_are_said_at_the_spec(page):
    from tests.studio.conftest import REPO

    page.check("input[name=first-source][value=upload]")
    page.set_input_files("#first-file", files=[{"name": "a.txt", "mimeType": "image/png", "buffer": b"no"}])
    page.locator(".err[data-field=first_frame] p").wait_for(timeout=10_000)
    page.set_input_files("#spec-file", files=[str(REPO / "examples/two_prompts.yaml")])
    page.wait_for_function("window.studio.state.objects.length === 2")
    page.wait_for_function("document.querySelector('.err[data-field=first_frame]').textContent === ''")

    arc = "{type: arc, center: [16, 16], radius: 8}"
    huge = f"size: [32, 32]\nn_frames: 100000\nobjects:\n  - {{mask: 'toy:circle', path: {arc}}}\n"
    page.set_input_files("#spec-file", files=[{"name": "huge.yaml", "mimeType": "text/yaml", "buffer": huge.encode()}])
    said = page.locator(".err[data-field=spec] p")
    said.first.wait_for(timeout=10_000)
    assert "n_frames" in said.first.inner_text() and "128" in said.first.inner_text()
    assert page.inner_text(".err[data-field=n_frames]") == ""  # not pinned to the page's own field


def test_size_fields_step_by_the_models_multiple_and_stop_at_the_bounds(page):
    multiple = page.evaluate("window.studio.config.size_multiple")
    for field in ("#height", "#width"):
        assert page.get_attribute(field, "step") == str(multiple) and page.get_attribute(field, "max") == "512"
    assert page.get_attribute("#n-frames", "max") == "128"


def test_a_photo_as_first_frame_is_warned_about_on_the_page(page):
    import io

    from PIL import Image
    from skimage import data as pictures

    buffer = io.BytesIO()
    Image.fromarray(pictures.astronaut()).save(buffer, format="PNG")
    page.check("input[name=first-source][value=upload]")
    page.set_input_files(
        "#first-file", files=[{"name": "astronaut.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    page.wait_for_function("document.querySelector('#warnings').textContent.includes('another world')", timeout=20_000)


def test_a_generating_video_is_queued_and_cancelled_from_the_page(page, studio_url):
    page.fill("#prompt", "a red circle runs")
    page.fill("#steps", "50")
    page.fill("#n-frames", "128")
    page.click("#generate")
    page.locator("#queue li").first.wait_for(timeout=20_000)
    run = page.evaluate("document.querySelector('#queue li').textContent").split(": ")[1].split(" ")[0]
    page.wait_for_function("document.querySelector('#generate-box').dataset.state === 'denoising'", timeout=60_000)
    page.click("#cancel")
    page.wait_for_function(
        "document.querySelector('#progress-text').textContent.startsWith('cancelled')", timeout=60_000
    )
    assert page.is_enabled("#generate") and page.is_hidden("#cancel")
    assert not (studio_url[1] / run).exists()  # no partial output left behind
