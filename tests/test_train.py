import numpy as np
import torch

from ecgscope.models import create_model
from ecgscope.train import TaskSpec, fit_multitask, predict_multitask
from ecgscope.train.module import masked_multitask_loss


def test_missing_labels_are_masked_out_of_the_loss():
    spec = TaskSpec(["a"], ["b"], {"a": 0.0}, {"a": 1.0}, {"b": 1.0})
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


def test_training_learns_a_signal_and_keeps_the_best_epoch():
    rng = np.random.default_rng(0)
    n, t = 600, 200
    amplitude = rng.uniform(0.5, 2.0, n)
    x = (amplitude[:, None, None] * np.sin(np.linspace(0, 20, t))[None, None, :]
         + rng.normal(0, 0.1, (n, 12, t))).astype(np.float32)
    targets = {"amp": amplitude, "big": (amplitude > 1.25).astype(float)}
    spec = TaskSpec.from_targets(targets, ["amp"], ["big"])
    y = spec.encode(targets)
    module = fit_multitask(create_model("compact_cnn_tiny", num_outputs=2), spec, x[:500], y[:500], x[500:],
                           y[500:], max_epochs=6, batch_size=32, lr=1e-2, progress=False)
    pred = predict_multitask(module, x[500:])
    assert np.corrcoef(pred["amp"], amplitude[500:])[0, 1] > 0.8
    assert ((pred["big"] > 0.5) == (amplitude[500:] > 1.25)).mean() > 0.8
