"""Foundation encoders: self-supervised pretraining on unlabeled ECGs, embeddings, published checkpoints.

- ``pretrain_encoder`` (``ecgscope pretrain``): contrastive pretraining across segments and leads;
- ``embed_store`` (``ecgscope embed``): one vector per ECG, streamed to Parquet, from a saved encoder
  (``load_encoder``) or ECGFounder's released weights (``ecgfounder_encoder``);
- ``save_ecgfounder`` (``ecgscope import-ecgfounder``): ECGFounder's weights and input contract as a model
  directory, to fine-tune (``ecgscope finetune --from``);
- ``linear_probe``: how much a frozen embedding knows about a label.

Embedding does not import Lightning; ``pretrain_encoder`` imports it when first used.
"""

from ecgscope._lazy import import_on_first_use
from ecgscope.foundation.embed import (
           Encoder,
           ecgfounder_encoder,
           embed_batches,
           embed_store,
           load_encoder,
           read_embeddings,
           save_ecgfounder,
)
from ecgscope.foundation.probe import linear_probe

__getattr__ = import_on_first_use(__name__, {"pretrain_encoder": "pretrain"})

__all__ = ["Encoder", "ecgfounder_encoder", "embed_batches", "embed_store", "linear_probe", "load_encoder",
           "pretrain_encoder", "read_embeddings", "save_ecgfounder"]
