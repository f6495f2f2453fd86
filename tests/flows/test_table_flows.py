"""The comparisons' flows (ablations, compare) are one flow over another section: the section's config and the
params path reach the run, its table comes back as rows and as a table artifact under the section's key."""

import pandas as pd
import yaml

from tasks.common.params import StageConfig


class Section(StageConfig):
    out_dir: str = "data/x"


def test_a_table_flow_runs_its_section_and_publishes_the_table(prefect_harness, tmp_path):
    from prefect.artifacts import Artifact

    from flows.ablations import ablations_flow
    from flows.common import table_flow
    from flows.compare import compare_flow

    assert (ablations_flow.name, compare_flow.name) == ("ablations", "compare")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"demo": {"out_dir": "elsewhere"}}))
    seen = []

    def run(cfg, params_path):
        seen.append((cfg.out_dir, params_path))
        return pd.DataFrame([{"system": "a", "iou": 0.5}, {"system": "b", "iou": 0.25}])

    rows = table_flow("demo", Section, run, "a demo table")(str(params))

    assert seen == [("elsewhere", str(params))]
    assert rows == [{"system": "a", "iou": 0.5}, {"system": "b", "iou": 0.25}]
    artifact = Artifact.get("demo")
    assert artifact is not None and artifact.type == "table" and "0.25" in str(artifact.data)
