"""A real studio session in headless Chromium: the README's example motion (two objects) made in the
page's fields, no YAML, generated with the latest checkpoint; screenshots for the README and the time
from pressing Generate to a playing video.

    python -m studio.screenshots --out docs/images        # needs /usr/bin/chromium and a checkpoint (make demo)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import flows  # noqa: F401  (the project's environment defaults, before torch loads)

# isort: split
import numpy as np

PLAYING = "(() => { const v = document.querySelector('#result-video'); return v.readyState >= 2 && !v.paused; })()"


def make_example_motion(page) -> None:
    """examples/two_objects.yaml, through the page's fields: a hopping circle running right, a star on an arc."""
    fill = lambda path, value: page.fill(f'[data-path="{path}"]', str(value))  # noqa: E731
    fill("prompt", "a red circle jumps on a grassy meadow")
    page.select_option('[data-path="objects.0.mask.shape"]', "circle")
    fill("objects.0.mask.radius", 7)
    page.select_option('[data-action=path-type][data-i="0"]', "line")
    page.select_option('[data-action=line-mode][data-i="0"]', "speed")
    fill("objects.0.path.start.0", 10)
    fill("objects.0.path.start.1", 52)
    fill("objects.0.path.speed", 3)
    fill("objects.0.path.direction_deg", 0)
    page.check('[data-action=hop][data-i="0"]')
    fill("objects.0.hop.height", 10)
    fill("objects.0.hop.count", 2)
    fill("objects.0.scale.0", 0.8)
    fill("objects.0.scale.1", 1.2)
    page.click("#add-object")
    page.select_option('[data-path="objects.1.mask.shape"]', "star")
    fill("objects.1.mask.radius", 6)
    page.select_option('[data-action=path-type][data-i="1"]', "arc")
    for key, value in (("center.0", 32), ("center.1", 30), ("radius", 18), ("start_deg", 180), ("end_deg", 360)):
        fill(f"objects.1.path.{key}", value)
    page.select_option('[data-path="objects.1.path.easing"]', "ease_in_out")
    page.wait_for_function("document.querySelector('#preview-summary').textContent.includes('2 object(s)')")


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    from studio.app import create_app
    from studio.server import chromium, serving
    from studio.settings import Settings
    from tasks.masks.sequences import build_sequence, load_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--data", type=Path, help="the studio's data folder (default: a temporary one)")
    parser.add_argument("--runs", type=int, default=2, help="Generate this many times (the first is timed too)")
    args = parser.parse_args(argv)
    data = args.data or Path(tempfile.mkdtemp(prefix="studio-shots-"))
    app = create_app(Settings(data_dir=data, use_deployment=False))
    studio = app.state.studio
    if studio.model.checkpoint is None:
        raise SystemExit(f"no checkpoint: {studio.model.problem}")
    t0 = time.perf_counter()
    studio.generator.warm_up().join()  # as `make studio` does while the page opens
    print(f"model loaded in {time.perf_counter() - t0:.1f} s ({studio.model.name})")
    args.out.mkdir(parents=True, exist_ok=True)
    with serving(app) as url, sync_playwright() as p, chromium(p) as browser:
        page = browser.new_page(viewport={"width": 1180, "height": 900}, device_scale_factor=1)
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        make_example_motion(page)
        page.locator("#scrubber").fill("9")
        page.click('[data-action=select][data-i="0"]')
        time.sleep(0.5)
        page.screenshot(path=str(args.out / "studio-page.png"), full_page=True)
        for k in range(args.runs):
            page.fill('[data-path="seed"]', str(k))
            t0 = time.perf_counter()
            page.click("#generate")
            seen = []  # the progress line as a person watching would read it
            while page.get_attribute("#result-iou", "data-iou") is None and time.perf_counter() - t0 < 600:
                said = page.inner_text("#progress-text")
                if said and (not seen or seen[-1] != said):
                    seen.append(said)
                time.sleep(0.25)
            print(f"  progress: {len(seen)} messages, e.g. {seen[:2] + seen[-3:]}")
            page.wait_for_function(PLAYING, timeout=60_000)
            seconds = time.perf_counter() - t0
            print(f"seed {k}: Generate -> playing {seconds:.1f} s; {page.inner_text('#result-timing')}")
            print(f"  {page.inner_text('#result-iou')}")
        time.sleep(1.0)
        page.locator("#result").screenshot(path=str(args.out / "studio-result.png"))
        run = data / page.evaluate("document.querySelector('#run-list').value")
    example = build_sequence(load_spec(Path("examples/two_objects.yaml")), "examples")
    made = build_sequence(load_spec(run / "spec.yaml"), run)
    print(f"the page's spec renders examples/two_objects.yaml's masks: {np.array_equal(example, made)} ({run})")


if __name__ == "__main__":
    main()
