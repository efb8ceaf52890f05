"""Triton Python-backend model: raw strings -> BERT token ids, with all-MiniLM-L6-v2's tokenizer.

Copied into `<repository>/minilm_tokenizer/<version>/model.py` by the MiniLM builder, next to
the tokenizer files (tokenizer.json, vocab.txt, ...), which it loads offline with transformers.

Input `TEXT` (TYPE_STRING, [batch, 1]); outputs `input_ids` and `attention_mask` (TYPE_INT64,
[batch, tokens]), padded to the longest text of the request and truncated at 256 tokens, as
sentence-transformers does. Each request is tokenized on its own, so requests never share padding.
"""

import json
import os

import numpy as np

MAX_SEQ_LENGTH = 256


def tokenize(tokenizer, texts, max_length=MAX_SEQ_LENGTH):
    """Token ids and attention mask (int64) of a list of strings, padded to the longest."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    return batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)


def decode(array):
    """Strings of a TYPE_STRING tensor (bytes or str elements), flattened."""
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in np.asarray(array).reshape(-1)]


class TritonPythonModel:
    """One tokenizer per model instance."""

    def initialize(self, args):
        """Load the tokenizer files of this version folder (no network)."""
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers import AutoTokenizer

        folder = os.path.join(args["model_repository"], args["model_version"])
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        config = json.loads(args["model_config"])
        value = config.get("parameters", {}).get("max_seq_length", {}).get("string_value", "")
        self.max_length = int(value) if value else MAX_SEQ_LENGTH

    def execute(self, requests):
        """Tokenize each request's texts."""
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            try:
                texts = decode(pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy())
                ids, mask = tokenize(self.tokenizer, texts, self.max_length)
                tensors = [pb_utils.Tensor("input_ids", ids), pb_utils.Tensor("attention_mask", mask)]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as exc:  # noqa: BLE001 - every failure becomes a response error
                error = pb_utils.TritonError(f"tokenizer failed: {exc}")
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses

    def finalize(self):
        """Release the tokenizer."""
        self.tokenizer = None
