"""Every registered model, the same checks (timm style); Net1D's layout and checkpoint adapter."""

import pytest
import torch

from ecgscope.models import ModelCfg, create_model, list_models
from ecgscope.models.net1d import CheckpointMismatchError, load_ecgfounder

SMALL_INPUT = 1000  # keep CPU time bounded: every model is length-agnostic


@pytest.mark.parametrize("name", list_models())
def test_model_forward_backward_and_head_api(name):
    torch.manual_seed(0)
    model = create_model(name, num_outputs=3)
    cfg = model.pretrained_cfg
    assert isinstance(cfg, ModelCfg) and len(cfg.leads) == 12 and cfg.fs > 0 and cfg.n_samples > 0
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv1d))
    assert first_conv.in_channels == len(cfg.leads)  # the declared leads are what the first layer reads
    x = torch.randn(2, 12, SMALL_INPUT, requires_grad=True)
    features = model.forward_features(x)
    assert features.shape == (2, model.num_features)
    out = model.forward_head(features)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    model.reset_head(5)
    assert model(torch.randn(2, 12, SMALL_INPUT)).shape == (2, 5)


def test_unknown_model_is_named():
    with pytest.raises(KeyError, match="unknown model 'resnet9000'.*compact_cnn"):
        create_model("resnet9000")


def expected_ecgfounder_layout() -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of ECGFounder's Net1D, from the published spec (REFERENCE.md section 3)."""
    filters, blocks, kernel, group_width = [64, 160, 160, 400, 400, 1024, 1024], [2, 2, 2, 3, 3, 4, 4], 16, 16

    def bn(prefix, c):
        return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}

    layout = {"first_conv.conv.weight": (64, 12, kernel), "first_conv.conv.bias": (64,), **bn("first_bn", 64)}
    c_in = 64
    for i, (c_out, n) in enumerate(zip(filters, blocks, strict=True)):
        for j in range(n):
            p = f"stage_list.{i}.block_list.{j}"
            cin = c_in if j == 0 else c_out
            layout |= bn(f"{p}.bn1", cin) | bn(f"{p}.bn2", c_out) | bn(f"{p}.bn3", c_out)
            layout |= {f"{p}.conv1.conv.weight": (c_out, cin, 1), f"{p}.conv1.conv.bias": (c_out,),
                       f"{p}.conv2.conv.weight": (c_out, group_width, kernel), f"{p}.conv2.conv.bias": (c_out,),
                       f"{p}.conv3.conv.weight": (c_out, c_out, 1), f"{p}.conv3.conv.bias": (c_out,),
                       f"{p}.se_fc1.weight": (c_out // 2, c_out), f"{p}.se_fc1.bias": (c_out // 2,),
                       f"{p}.se_fc2.weight": (c_out, c_out // 2), f"{p}.se_fc2.bias": (c_out,)}
        c_in = c_out
    return layout | {"dense.weight": (150, 1024), "dense.bias": (150,)}


@pytest.fixture(scope="module")
def ecgfounder():
    torch.manual_seed(1)
    return create_model("net1d_ecgfounder").eval()


def test_net1d_matches_the_published_ecgfounder_layout(ecgfounder):
    ours = {k: tuple(v.shape) for k, v in ecgfounder.state_dict().items()}
    assert ours == expected_ecgfounder_layout()
    x = torch.randn(1, 12, 5000)
    assert ecgfounder.forward_features(x).shape == (1, 1024)  # 500 Hz x 10 s -> 1024-d embedding


def test_ecgfounder_checkpoint_loads_through_the_adapter(ecgfounder, tmp_path):
    # a checkpoint of the released layout: {"state_dict": ...}, saved from DataParallel ("module." prefix)
    state = {f"module.{k}": v for k, v in ecgfounder.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ecgfounder.pth")
    fresh = load_ecgfounder(create_model("net1d_ecgfounder").eval(), tmp_path / "ecgfounder.pth")
    x = torch.randn(2, 12, 5000)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), ecgfounder(x))
    head_off = load_ecgfounder(create_model("net1d_ecgfounder", num_outputs=2), tmp_path / "ecgfounder.pth",
                               keep_head=False)
    torch.testing.assert_close(head_off.first_conv.conv.weight, ecgfounder.first_conv.conv.weight)


def test_wrong_checkpoints_fail_with_a_clear_message(tmp_path):
    small = create_model("net1d_small").state_dict()
    torch.save({"state_dict": small}, tmp_path / "small.pth")
    with pytest.raises(CheckpointMismatchError, match="wrong shape.*ECGFounder Net1D checkpoint"):
        load_ecgfounder(create_model("net1d_ecgfounder"), tmp_path / "small.pth")

    class Evil:
        def __reduce__(self):
            return (print, ("this would run on load",))

    torch.save({"state_dict": {}, "payload": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointMismatchError, match="not a loadable weights-only checkpoint"):
        load_ecgfounder(create_model("net1d_ecgfounder"), tmp_path / "evil.pth")
