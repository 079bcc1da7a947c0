"""Prediction, embedding, motion generation, the service and the CLI never import Lightning (seconds of start-up
for every command and server); the training parts are still there when asked for by name."""

import subprocess
import sys

import pytest

#: what a user runs without training anything, and the names users know for loading a model's parts
WITHOUT_TRAINING = ["import ecgscope", "import ecgscope.cli", "import ecgscope.api", "import ecgscope.train",
                    "import ecgscope.train.predict", "import ecgscope.foundation", "import ecgscope.motion",
                    "import ecgscope.serve.app", "import ecgscope.explain",
                    "from ecgscope.train import load_model, TaskSpec",
                    "from ecgscope.foundation import embed_store, load_encoder",
                    "from ecgscope.motion import generate_motion, load_generator"]
#: one process (each would pay the start-up again): the first statement after which Lightning is loaded, then
#: whether the training parts, asked for by name, load it and are there
PROBE = """
import sys
for statement in {statements!r}:
    exec(statement)
    if "lightning" in sys.modules:
        print("first to import Lightning:", statement)
        break
else:
    print("first to import Lightning: none")
from ecgscope.train import MultiTaskModule, StoreDataset
from ecgscope.foundation import pretrain_encoder
from ecgscope.motion import MotionGAN, train_motion
print("training parts:", "lightning" in sys.modules and all(map(callable, (MultiTaskModule, StoreDataset,
                                                                         pretrain_encoder, MotionGAN, train_motion))))
"""


def test_lightning_is_imported_only_with_the_training_parts():
    done = subprocess.run([sys.executable, "-c", PROBE.format(statements=WITHOUT_TRAINING)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-2:] == ["first to import Lightning: none", "training parts: True"]


@pytest.mark.parametrize("package", ["ecgscope.train", "ecgscope.foundation", "ecgscope.motion"])
def test_an_unknown_name_is_still_an_attribute_error(package):
    import importlib

    with pytest.raises(AttributeError, match="no_such_name"):
        importlib.import_module(package).no_such_name  # noqa: B018
