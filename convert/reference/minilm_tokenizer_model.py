"""Triton Python-backend model: raw strings -> BERT token ids, with all-MiniLM-L6-v2's tokenizer.

Copied into `<repository>/minilm_tokenizer/<version>/model.py` by the MiniLM builder, next to
the tokenizer files (tokenizer.json, vocab.txt, ...), which it loads offline with transformers.

Input `TEXT` (TYPE_STRING, [batch, 1]); outputs `input_ids` and `attention_mask` (TYPE_INT64,
[batch, tokens]), truncated at 256 tokens as sentence-transformers does, and padded to the
longest text of the request rounded up to a multiple of `pad_to_multiple_of` (16): the padding is
masked out (attention mask, masked mean pooling), and requests whose lengths round to the same
bucket have the same shape, which is what Triton's dynamic batcher needs to merge them.
"""

import json
import os

import numpy as np

MAX_SEQ_LENGTH = 256


def tokenize(tokenizer, texts, max_length=MAX_SEQ_LENGTH, multiple=None):
    """Token ids and attention mask (int64) of a list of strings, padded to the longest (rounded up)."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np",
                      pad_to_multiple_of=multiple)
    return batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)


def decode(array):
    """Strings of a TYPE_STRING tensor (bytes or str elements), flattened."""
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in np.asarray(array).reshape(-1)]


def _int(parameters, key, default):
    value = parameters.get(key, {}).get("string_value", "")
    return int(value) if value else default


class TritonPythonModel:
    """One tokenizer per model instance."""

    def initialize(self, args):
        """Load the tokenizer files of this version folder (no network)."""
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers import AutoTokenizer

        folder = os.path.join(args["model_repository"], args["model_version"])
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        parameters = json.loads(args["model_config"]).get("parameters", {})
        self.max_length = _int(parameters, "max_seq_length", MAX_SEQ_LENGTH)
        self.multiple = _int(parameters, "pad_to_multiple_of", 0) or None

    def execute(self, requests):
        """Tokenize each request's texts."""
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            try:
                texts = decode(pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy())
                ids, mask = tokenize(self.tokenizer, texts, self.max_length, self.multiple)
                tensors = [pb_utils.Tensor("input_ids", ids), pb_utils.Tensor("attention_mask", mask)]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as exc:  # noqa: BLE001 - every failure becomes a response error
                error = pb_utils.TritonError(f"tokenizer failed: {exc}")
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses

    def finalize(self):
        """Release the tokenizer."""
        self.tokenizer = None
