"""Explanations: integrated gradients and occlusion put the attribution where the model reads, complete to the
output difference, and the randomisation check sees attributions change when the weights do."""

import numpy as np
import pytest
import torch
from torch import nn

from ecgscope.explain import attribute, head_column, randomisation_check
from ecgscope.explain.attribution import ExplainError
from ecgscope.leads import STANDARD_LEADS
from ecgscope.models import create_model
from ecgscope.train import TaskSpec

SPEC = TaskSpec(regression=["rvef"], binary=["rv_dysfunction"], mean={"rvef": 58.0}, std={"rvef": 6.0},
                pos_weight={"rv_dysfunction": 2.0})


class ReadsV1(nn.Module):
    """A model whose every output is a function of lead V1 alone (two layers, so there is something to
    randomise)."""

    def __init__(self, samples: int):
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Linear(samples, 16)
        self.head = nn.Linear(16, SPEC.n_outputs)

    def forward(self, x):
        return self.head(torch.tanh(self.first(x[:, 6])))


def _ecg(samples: int = 500) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(0, 0.3, (12, samples)).astype(np.float32)


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
@pytest.mark.parametrize("target", ["rvef", "rv_dysfunction"])
def test_attribution_lands_on_the_only_lead_the_model_reads(method, target):
    x = _ecg()
    found = attribute(ReadsV1(500), SPEC, x, target, STANDARD_LEADS, 50.0, method=method)
    importance = found.lead_importance()
    assert importance["V1"] == pytest.approx(1.0) and importance.drop("V1").abs().max() == 0
    assert found.values.shape == x.shape and np.isfinite(found.output)
    segments = found.segment_importance(seconds=1.0)
    assert segments.shape == (12, 10) and segments.to_numpy().sum() == pytest.approx(1.0)


def test_integrated_gradients_are_complete_on_a_real_architecture():
    torch.manual_seed(1)
    model = create_model("compact_cnn_tiny", num_outputs=SPEC.n_outputs).eval()
    x = _ecg(1000)
    found = attribute(model, SPEC, x, "rvef", STANDARD_LEADS, 100.0, steps=128)
    with torch.no_grad():
        at_zero = float(model(torch.zeros(1, 12, 1000))[0, head_column(SPEC, "rvef")])
    # completeness: the attributions add up to the output's difference from the flat-line baseline
    assert found.values.sum() == pytest.approx(found.output - at_zero, abs=0.05 * abs(found.output - at_zero) + 1e-3)
    assert found.delta < 0.05 * abs(found.output - at_zero) + 1e-3


class ReadsAll(nn.Module):
    """Two layers over every sample of every lead."""

    def __init__(self, samples: int):
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Linear(12 * samples, 16)
        self.head = nn.Linear(16, SPEC.n_outputs)

    def forward(self, x):
        return self.head(torch.tanh(self.first(x.flatten(1))))


def test_randomising_the_weights_changes_the_attributions():
    x = _ecg()
    table = randomisation_check(ReadsAll(500), SPEC, x, "rvef", STANDARD_LEADS, 50.0)
    assert list(table.block) == ["head", "first"]  # from the output back to the input
    assert table.rank_correlation.iloc[-1] < 0.5  # nothing of the trained model's pattern is left
    assert table.lead_rank_correlation.notna().all()


def test_an_unknown_target_or_method_is_refused():
    with pytest.raises(ExplainError, match="no target 'lvef'"):
        attribute(ReadsV1(500), SPEC, _ecg(), "lvef", STANDARD_LEADS, 50.0)
    with pytest.raises(ExplainError, match="method must be one of"):
        attribute(ReadsV1(500), SPEC, _ecg(), "rvef", STANDARD_LEADS, 50.0, method="saliency")


def test_explain_command_writes_the_tables_and_the_figure_for_a_muse_file(tmp_path):
    import json

    from typer.testing import CliRunner

    from ecgscope.cli import app
    from ecgscope.evaluate import SplitConformal
    from ecgscope.signal import default_pipeline
    from ecgscope.train import save_model

    from .conftest import ludb_leads_uv
    from .writers import MUSE_LEADS, write_muse

    uv = ludb_leads_uv()
    path = write_muse(tmp_path / "ecg.xml", {n: uv[n] for n in MUSE_LEADS})
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    truth = rng.normal(58, 6, 100)
    model = save_model(tmp_path / "model", create_model("compact_cnn_tiny", num_outputs=SPEC.n_outputs),
                       "compact_cnn_tiny", SPEC, default_pipeline(100.0, 1000),
                       conformal={"rvef": SplitConformal(0.1).fit(truth, truth + 1, np.ones(100))})
    result = CliRunner().invoke(app, ["explain", str(model), str(path), "--target", "rv_dysfunction",
                                      "--out", str(tmp_path / "why")])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "why" / "explanation.json").read_text())
    assert info["head_output_means"] == "logit" and sum(info["lead_importance"].values()) == pytest.approx(1, 1e-3)
    assert (tmp_path / "why" / "explanation.png").stat().st_size > 10_000
    saved = np.load(tmp_path / "why" / "attribution.npz")
    assert saved["attribution"].shape == saved["model_input"].shape == (12, 1000)
    bad = CliRunner().invoke(app, ["explain", str(model), str(path), "--target", "lvef", "--out",
                                   str(tmp_path / "no")])
    assert bad.exit_code == 2 and "no target 'lvef'" in bad.output and not (tmp_path / "no").exists()


def test_a_cox_head_is_explained_through_its_log_risk():
    spec = TaskSpec(regression=["rvef"], survival=["death"], mean={"rvef": 58.0}, std={"rvef": 6.0})

    class Survival(ReadsV1):
        def __init__(self):
            super().__init__(500)
            self.head = nn.Linear(16, spec.n_outputs)

    model = Survival().eval()
    found = attribute(model, spec, _ecg(), "death", STANDARD_LEADS, 50.0)
    column = head_column(spec, "death")
    assert column == spec.layout["death"][0] != head_column(spec, "rvef")
    assert found.lead_importance()["V1"] == pytest.approx(1.0)
    with torch.no_grad():
        flat = float(model(torch.zeros(1, 12, 500))[0, column])
    assert found.values.sum() == pytest.approx(found.output - flat, abs=1e-4)  # the log-risk's change, complete
