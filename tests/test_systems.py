"""The one registry of the comparisons' systems (tasks/systems.py): both tables name registered systems, and
every system, trained or not, runs through the same call and the same loop."""

from dataclasses import replace

import yaml

from tasks.costs import Costs
from tasks.generate.config import GenerateConfig
from tasks.systems import ABLATIONS, SYSTEMS, TABLE_I, Settings, make_videos, slug


def test_both_tables_name_registered_systems_and_only_the_peers_are_untrained():
    assert set(ABLATIONS) <= set(SYSTEMS) and set(TABLE_I) <= set(SYSTEMS)
    untrained = {name for name, s in SYSTEMS.items() if s.weights is None}
    assert untrained == {"Text2Video-Zero", "Text2Video-Zero + ControlNet", "ControlVideo"}
    ours, full = SYSTEMS["ours"], SYSTEMS["full"]
    assert (ours.weights, ours.train, ours.generate) == (full.weights, full.train, full.generate)
    assert len({slug(name) for name in SYSTEMS}) == len(SYSTEMS), "two systems would share a folder"


def test_every_system_runs_through_one_call_loaded_once_each_video_timed(tmp_path):
    (tmp_path / "manifest.yaml").write_text(
        yaml.safe_dump({"sequences": [{"id": "a", "prompt": "a red star"}, {"id": "b", "prompt": "a blue square"}]})
    )
    calls = []

    def video(job, settings):
        calls.append(("video", job.video_id, settings.generate.out_dir))
        return {"video_id": job.video_id, "prompt": job.prompt}

    def load(settings):
        calls.append(("load", settings.base_dir))

    system = replace(SYSTEMS["ControlVideo"], video=video, load=load)
    out = tmp_path / "out"
    settings = Settings(GenerateConfig(sequences=str(tmp_path), seeds=[0, 1], out_dir=str(out)), None, "base")
    costs = Costs()

    table = make_videos(system, settings, costs)

    assert calls[0] == ("load", "base") and len(calls) == 5
    assert [c[1] for c in calls[1:]] == ["a-s0", "a-s1", "b-s0", "b-s1"]
    assert list(table["video_id"]) == ["a-s0", "a-s1", "b-s0", "b-s1"]
    assert (out / "manifest.csv").is_file() and costs.summary()["n_generated"] == 4
