import numpy as np
import pandas as pd
import pytest
import torch
from lifelines import CoxPHFitter

from ecgscope.models import create_model
from ecgscope.train import TaskSpec, fit_multitask, predict_multitask, seeded_model
from ecgscope.train.losses import cox_partial_likelihood, gaussian_nll
from ecgscope.train.module import completed_epochs, masked_multitask_loss, select_device


def test_missing_labels_are_masked_out_of_the_loss():
    spec = TaskSpec(regression=["a"], binary=["b"], mean={"a": 0.0}, std={"a": 1.0}, pos_weight={"b": 1.0},
                    uncertainty=False)
    targets = torch.tensor([[1.0, 1.0], [float("nan"), 0.0]])
    out = torch.tensor([[1.0, 0.0], [5.0, 0.0]])
    loss = masked_multitask_loss(out, targets, spec)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.zeros(2), torch.tensor([1.0, 0.0]))
    assert torch.isclose(loss, (0.0 + bce) / 2)  # the NaN regression target adds no error
    moved = out.clone()
    moved[1, 0] = -40.0  # the output whose label is missing has no influence ...
    assert torch.isclose(masked_multitask_loss(moved, targets, spec), loss)
    moved[0, 0] = -40.0  # ... an output with a label does
    assert not torch.isclose(masked_multitask_loss(moved, targets, spec), loss)


@pytest.mark.parametrize(("cuda", "bf16", "expected"), [(False, False, ("cpu", "32-true")),
                                                      (True, True, ("gpu", "bf16-mixed")),
                                                      (True, False, ("gpu", "16-mixed"))])
def test_device_selection_uses_mixed_precision_only_on_a_gpu(monkeypatch, cuda, bf16, expected):
    # No GPU runs these tests; this pins the choice every trainer (supervised, foundation, motion) makes.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert select_device() == expected


def test_training_learns_a_signal_and_keeps_the_best_epoch():
    rng = np.random.default_rng(0)
    n, t = 600, 200
    amplitude = rng.uniform(0.5, 2.0, n)
    x = (amplitude[:, None, None] * np.sin(np.linspace(0, 20, t))[None, None, :]
         + rng.normal(0, 0.1, (n, 12, t))).astype(np.float32)
    targets = {"amp": amplitude, "big": (amplitude > 1.25).astype(float)}
    spec = TaskSpec.from_targets(targets, ["amp"], ["big"])
    y = spec.encode(targets)
    model = create_model("compact_cnn_tiny", num_outputs=spec.n_outputs)
    module = fit_multitask(model, spec, x[:500], y[:500], x[500:], y[500:], max_epochs=6, batch_size=32, lr=1e-2,
                           progress=False)
    pred = predict_multitask(module, x[500:])
    assert np.corrcoef(pred["amp"], amplitude[500:])[0, 1] > 0.8
    assert ((pred["big"] > 0.5) == (amplitude[500:] > 1.25)).mean() > 0.8


def test_gaussian_head_gives_intervals_that_widen_with_noise():
    spec = TaskSpec(regression=["a"], mean={"a": 0.0}, std={"a": 1.0})
    assert spec.layout == {"a": (0, 2)} and spec.n_outputs == 2
    decoded = spec.decode(np.array([[1.0, 0.0], [1.0, np.log(4.0)]]))
    np.testing.assert_allclose(decoded["a_std"], [1.0, 2.0])
    mean, log_var, y = torch.tensor([0.0, 1.0]), torch.tensor([0.0, float(np.log(4.0))]), torch.tensor([1.0, 1.0])
    expected = 0.5 * ((0 + 1.0 / 1) + (np.log(4.0) + 0.0 / 4)) / 2  # mean of 0.5 (log var + err^2 / var)
    torch.testing.assert_close(gaussian_nll(mean, log_var, y, beta=0.0), torch.tensor(expected, dtype=torch.float32))
    assert gaussian_nll(mean, log_var, torch.tensor([float("nan")] * 2)) is None


def test_beta_nll_keeps_a_large_variance_from_silencing_the_mean():
    target = torch.zeros(2)
    log_var = torch.tensor([0.0, 6.0])  # the second example is declared very uncertain
    grads = {}
    for beta in (0.0, 0.5, 1.0):
        mean = torch.tensor([1.0, 1.0], requires_grad=True)
        gaussian_nll(mean, log_var, target, beta=beta).backward()
        grads[beta] = mean.grad[1] / mean.grad[0]  # pull on the uncertain mean relative to the certain one
    assert grads[0.0] == pytest.approx(np.exp(-6.0), rel=1e-4)  # plain NLL: almost no pull at all
    assert grads[0.5] == pytest.approx(np.exp(-3.0), rel=1e-4)
    assert grads[1.0] == pytest.approx(1.0, rel=1e-4)  # as MSE: the variance no longer weights the mean


def test_cox_loss_matches_lifelines_partial_likelihood():
    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    time = rng.exponential(1 / np.exp(0.7 * x))
    event = (rng.random(n) < 0.7).astype(float)
    cph = CoxPHFitter().fit(pd.DataFrame({"x": x, "t": time, "e": event}), "t", "e")
    beta = torch.tensor(float(cph.params_["x"]), requires_grad=True)
    loss = cox_partial_likelihood(beta * torch.tensor(x), torch.tensor(time), torch.tensor(event))
    # the same likelihood: value equal to lifelines' log-likelihood, and stationary at its estimate
    assert float(loss) * event.sum() == pytest.approx(-cph.log_likelihood_, rel=1e-6)
    loss.backward()
    assert abs(float(beta.grad)) < 1e-4
    # a perfect risk order beats a reversed one
    t = torch.arange(1.0, 11.0)
    e = torch.ones(10)
    assert cox_partial_likelihood(-t, t, e) < cox_partial_likelihood(t, t, e)


SEEDED_RUN = """
import hashlib
import numpy as np
from ecgscope.train import TaskSpec, fit_multitask, seeded_model
rng = np.random.default_rng(0)
x = rng.normal(size=(120, 12, 300)).astype(np.float32)
t = {"a": rng.normal(size=120), "b": (rng.random(120) < 0.3).astype(float)}
spec = TaskSpec.from_targets(t, ["a"], ["b"])
y = spec.encode(t)
module = fit_multitask(seeded_model("compact_cnn_tiny", 3, num_outputs=spec.n_outputs), spec, x[:100], y[:100],
                       x[100:], y[100:], max_epochs=2, batch_size=16, progress=False)
print(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in module.model.parameters())).hexdigest())
"""


def test_same_seed_same_weights_in_separate_processes():
    import subprocess
    import sys

    runs = [subprocess.run([sys.executable, "-c", SEEDED_RUN], capture_output=True, text=True, check=True)
            for _ in range(2)]
    hashes = [r.stdout.strip().splitlines()[-1] for r in runs]
    assert hashes[0] == hashes[1]  # weight initialisation included: the model is built after seeding


def test_decoded_probabilities_undo_the_positive_class_weight():
    # with positives weighted by w the optimal logit is the true one plus log(w); decoding removes it
    spec = TaskSpec(binary=["rv_dysfunction"], pos_weight={"rv_dysfunction": 4.0})
    probability = spec.decode(np.array([[np.log(4.0)], [0.0]], dtype=np.float32))["rv_dysfunction"]
    assert probability == pytest.approx([0.5, 0.2])


def test_array_fit_killed_mid_epoch_resumes_from_its_checkpoint_to_the_same_weights(tmp_path):
    from .test_training_run import Crash, StartEpoch

    rng = np.random.default_rng(1)
    x = rng.normal(size=(160, 12, 300)).astype(np.float32)
    t = {"a": x[:, 1, :50].mean(axis=1) + rng.normal(0, 0.1, 160), "b": (rng.random(160) < 0.3).astype(float)}
    spec = TaskSpec.from_targets(t, ["a"], ["b"])
    y = spec.encode(t)

    def fit(**kwargs):
        # 136 training ECGs in batches of 16 end each epoch on a partial batch, as real cohorts do
        return fit_multitask(seeded_model("compact_cnn_tiny", 5, num_outputs=spec.n_outputs), spec, x[:136],
                             y[:136], x[136:], y[136:], max_epochs=3, batch_size=16, progress=False, **kwargs)

    clean = fit()
    with pytest.raises(RuntimeError, match="killed mid-epoch"):
        fit(checkpoint_dir=tmp_path, callbacks=[Crash()])
    assert completed_epochs(tmp_path / "last.ckpt") == 1
    start = StartEpoch()
    resumed = fit(checkpoint_dir=tmp_path, callbacks=[start])
    assert start.value == 1  # it went on from the checkpoint instead of starting again
    for (name, a), b in zip(clean.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)
