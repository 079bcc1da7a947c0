import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from lifelines import CoxPHFitter
from torch.utils.data import DataLoader, TensorDataset

from ecgscope.models import create_model
from ecgscope.train import MultiTaskModule, TaskSpec, predict_multitask
from ecgscope.train.losses import cox_partial_likelihood, gaussian_nll
from ecgscope.train.module import masked_multitask_loss, select_device


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
def test_device_choice_with_torch_cuda_patched(monkeypatch, cuda, bf16, expected):
    # Not a GPU test: no GPU runs it. It patches torch.cuda to pin the choice every trainer (supervised,
    # foundation, motion) makes: fp32 on CPU, bf16 or fp16 mixed precision where CUDA reports a device.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert select_device() == expected


@pytest.mark.long
def test_the_multitask_module_learns_a_signal():
    rng = np.random.default_rng(0)
    n, t = 600, 200
    amplitude = rng.uniform(0.5, 2.0, n)
    x = (amplitude[:, None, None] * np.sin(np.linspace(0, 20, t))[None, None, :]
         + rng.normal(0, 0.1, (n, 12, t))).astype(np.float32)
    targets = {"amp": amplitude, "big": (amplitude > 1.25).astype(float)}
    spec = TaskSpec.from_targets(targets, ["amp"], ["big"])
    y = spec.encode(targets)
    # the Lightning module itself (loss, heads, decoding); studies train it through train_model
    torch.manual_seed(0)
    module = MultiTaskModule(create_model("compact_cnn_tiny", num_outputs=spec.n_outputs), spec, lr=1e-2,
                             max_epochs=6)
    loader = DataLoader(TensorDataset(torch.from_numpy(x[:500]), torch.from_numpy(y[:500])), batch_size=32,
                        shuffle=True, generator=torch.Generator().manual_seed(0))
    L.Trainer(max_epochs=6, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(module, loader)
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


def test_decoded_probabilities_undo_the_positive_class_weight():
    # with positives weighted by w the optimal logit is the true one plus log(w); decoding removes it
    spec = TaskSpec(binary=["rv_dysfunction"], pos_weight={"rv_dysfunction": 4.0})
    probability = spec.decode(np.array([[np.log(4.0)], [0.0]], dtype=np.float32))["rv_dysfunction"]
    assert probability == pytest.approx([0.5, 0.2])




def test_checkpoints_carry_every_cuda_devices_random_state(monkeypatch):
    # Not a GPU test: torch.cuda is patched so the save/restore logic runs here; gpu_check.sh runs it for real.
    from ecgscope.train.module import RngState

    states, restored = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3], dtype=torch.uint8)], []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((device, state)))
    checkpoint: dict = {}
    RngState().on_save_checkpoint(None, None, checkpoint)
    assert checkpoint["ecgscope_cuda_rng"] is states and "ecgscope_torch_rng" in checkpoint
    RngState().on_load_checkpoint(None, None, checkpoint)
    assert [(d, s.tolist()) for d, s in restored] == [(0, [1, 2]), (1, [3])]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.warns(UserWarning, match="2 GPU"):
        RngState().on_load_checkpoint(None, None, checkpoint)


@pytest.mark.parametrize(("cuda", "cores", "expected"), [(False, 16, 0), (True, 16, 8), (True, 3, 2), (True, 1, 0)])
def test_loaders_keep_their_workers_and_pin_memory_for_a_gpu(monkeypatch, cuda, cores, expected):
    from ecgscope.train.datamodule import EpochSeededSampler, loader_workers, make_loader

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert loader_workers() == expected and loader_workers(3) == 3
    data = TensorDataset(torch.zeros(4, 2))
    loader = make_loader(data, 2, EpochSeededSampler(4, 0, shuffle=False), num_workers=None)
    assert loader.num_workers == expected and loader.persistent_workers == (expected > 0)
    assert loader.pin_memory == cuda
