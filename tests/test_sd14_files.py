"""What the sd14 world writes stays out of git and out of the toy world's tables: its outputs are
git-ignored, and `dvc metrics show` after the profile lists that world's metrics only."""

import json
import shutil
import subprocess

from tests.project_copy import BIN, REPO, env_for


def test_the_sd14_worlds_outputs_are_ignored_by_git():
    paths = ["base/sd14/report.json", "metrics/sd14/eval.json", "data/sd14/ablations/table.md"]
    shown = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True, text=True)
    assert shown.stdout.split() == paths


def test_dvc_metrics_show_in_the_sd14_world_lists_its_own_metrics_only(tmp_path):
    """Before, the toy world's ablation and comparison tables (hundreds of columns) came with it."""
    from tasks.common.params import apply_profile, read_params

    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    toy = read_params(tmp_path / "params.yaml")
    sd14 = apply_profile(tmp_path / "params.yaml", REPO / "profiles/sd14.yaml")
    written = {}
    for world in (toy, sd14):  # both worlds' metrics files on disk, as in a checkout that ran both
        for section in ("masks", "base", "train", "evaluate", "ablations", "compare"):
            path = tmp_path / world[section]["metrics"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({f"{section}_value": 1}))
            written.setdefault(id(world), set()).add(world[section]["metrics"])
    env = env_for(tmp_path)
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, timeout=60)
    out = subprocess.run(
        [str(BIN / "dvc"), "metrics", "show", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    shown = set(json.loads(out.stdout)[""]["data"])
    assert shown == written[id(sd14)], shown
    assert not shown & written[id(toy)]
