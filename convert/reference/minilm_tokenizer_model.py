"""Triton Python-backend model: raw strings -> BERT token ids, with all-MiniLM-L6-v2's tokenizer.

Copied into `<repository>/minilm_tokenizer/<version>/model.py` by the MiniLM builder, next to
the tokenizer files (tokenizer.json, vocab.txt, ...). It loads `tokenizer.json` offline with the
`tokenizers` package (Rust) alone: the same engine transformers' fast BERT tokenizer runs, configured
as transformers configures it for `padding=True, truncation=True, max_length, pad_to_multiple_of`
(same ids and masks, checked in tests/unit), without transformers' import (4.6 s and ~200 MB per stub).

Input `TEXT` (TYPE_STRING, [batch, 1]); outputs `input_ids` and `attention_mask` (TYPE_INT64,
[batch, tokens]), truncated at 256 tokens as sentence-transformers does, and padded to the
smallest of the `length_buckets` (config parameter, e.g. "32,64,128,256") that holds the request's
longest text. The padding is masked out (attention mask 0, masked mean pooling), and every request
whose texts fit the same bucket has the same shape: Triton's dynamic batcher merges only requests
of equal shape, and closes a batch at the first request of another shape, so few buckets mean
large encoder batches. Without `length_buckets`, the longest text rounded up to a multiple of
`pad_to_multiple_of` (older configs).

Bad input fails its own request only, with INVALID_ARGUMENT naming `TEXT`: a string that is not
UTF-8, one longer than `max_text_bytes`, or a request whose strings add up to more than
`max_request_bytes` (config parameters; checked before any tokenization, so an oversize request
costs no work). The other requests handed over in the same `execute()` call are answered normally.
"""

import json
import os

import numpy as np

MAX_SEQ_LENGTH = 256


def load_tokenizer(folder, max_length=MAX_SEQ_LENGTH, multiple=None):
    """The `tokenizers.Tokenizer` of `folder/tokenizer.json`, truncating at `max_length` tokens and
    padding each batch to its longest text rounded up to `multiple` (None: no rounding), on the right
    with [PAD] (what transformers sets up for `padding=True, truncation=True`)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length, stride=0, strategy="longest_first", direction="right")
    pad = tokenizer.padding or {}
    tokenizer.enable_padding(direction="right", pad_id=pad.get("pad_id", 0),
                             pad_type_id=pad.get("pad_type_id", 0), pad_token=pad.get("pad_token", "[PAD]"),
                             length=None, pad_to_multiple_of=multiple)
    return tokenizer


def tokenize(tokenizer, texts):
    """Token ids and attention mask (int64) of a list of strings, padded as `load_tokenizer` set up."""
    encodings = tokenizer.encode_batch(texts, add_special_tokens=True)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def parse_buckets(text, max_length=MAX_SEQ_LENGTH):
    """Ascending padded lengths from "32,64,128,256" ('' -> ()); the last must be `max_length`, so
    that every truncated text fits a bucket. ValueError otherwise."""
    buckets = tuple(int(part) for part in text.split(",") if part.strip())
    if buckets and (list(buckets) != sorted(set(buckets)) or buckets[0] < 1 or buckets[-1] != max_length):
        raise ValueError(f"length_buckets {text!r} must be distinct ascending lengths ending at the "
                         f"maximum sequence length {max_length}")
    return buckets


def pad_to_bucket(ids, mask, buckets, pad_id=0):
    """`ids` and `mask` padded on the right (with `pad_id` and mask 0) to the smallest bucket that holds
    them; unchanged without buckets or when they are longer than the last one."""
    rows, longest = ids.shape
    length = next((b for b in buckets if b >= longest), longest)
    if length == longest:
        return ids, mask
    padded_ids = np.full((rows, length), pad_id, dtype=ids.dtype)
    padded_mask = np.zeros((rows, length), dtype=mask.dtype)
    padded_ids[:, :longest], padded_mask[:, :longest] = ids, mask  # np.pad costs ~60 us per call
    return padded_ids, padded_mask


class TextError(ValueError):
    """A request's TEXT cannot be tokenized as sent (answered with INVALID_ARGUMENT)."""


def decode(array, max_text_bytes=None, max_request_bytes=None):
    """Strings of a TYPE_STRING tensor (bytes or str elements), flattened; TextError when one is not
    UTF-8 or the sizes exceed the limits (None: no limit)."""
    items = [x if isinstance(x, bytes) else str(x).encode("utf-8") for x in np.asarray(array).reshape(-1)]
    check_sizes([len(x) for x in items], max_text_bytes, max_request_bytes)
    texts = []
    for index, item in enumerate(items):
        try:
            texts.append(item.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise TextError(f"input 'TEXT' element {index} is not valid UTF-8 ({exc.reason} at byte "
                            f"{exc.start}); send text encoded as UTF-8") from exc
    return texts


def check_sizes(sizes, max_text_bytes, max_request_bytes):
    """Raise TextError when one string or the request's total exceeds its byte limit."""
    for index, size in enumerate(sizes):
        if max_text_bytes and size > max_text_bytes:
            raise TextError(f"input 'TEXT' element {index} has {size} bytes; this model accepts at most "
                            f"{max_text_bytes} bytes per text (only the first {MAX_SEQ_LENGTH} tokens "
                            "count): shorten or split it")
    if max_request_bytes and sum(sizes) > max_request_bytes:
        raise TextError(f"input 'TEXT' holds {sum(sizes)} bytes in {len(sizes)} texts; this model "
                        f"accepts at most {max_request_bytes} bytes per request: send fewer texts per call")


def _int(parameters, key, default):
    value = parameters.get(key, {}).get("string_value", "")
    return int(value) if value else default


class TritonPythonModel:
    """One tokenizer per model instance."""

    def initialize(self, args):
        """Load the tokenizer files of this version folder (no network)."""
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core per stub, as before
        folder = os.path.join(args["model_repository"], args["model_version"])
        parameters = json.loads(args["model_config"]).get("parameters", {})
        max_length = _int(parameters, "max_seq_length", MAX_SEQ_LENGTH)
        self.buckets = parse_buckets(parameters.get("length_buckets", {}).get("string_value", ""), max_length)
        multiple = None if self.buckets else _int(parameters, "pad_to_multiple_of", 0) or None
        self.tokenizer = load_tokenizer(folder, max_length, multiple)
        self.pad_id = (self.tokenizer.padding or {}).get("pad_id", 0)
        self.max_text_bytes = _int(parameters, "max_text_bytes", 0) or None
        self.max_request_bytes = _int(parameters, "max_request_bytes", 0) or None

    def execute(self, requests):
        """Tokenize each request's texts; a bad request gets its own error response."""
        return [self._one(request) for request in requests]

    def _one(self, request):
        import triton_python_backend_utils as pb_utils

        try:
            array = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            texts = decode(array, self.max_text_bytes, self.max_request_bytes)
            ids, mask = pad_to_bucket(*tokenize(self.tokenizer, texts), self.buckets, self.pad_id)
        except TextError as exc:
            error = pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG)
            return pb_utils.InferenceResponse(output_tensors=[], error=error)
        except Exception as exc:  # noqa: BLE001 - every failure becomes this request's error
            return pb_utils.InferenceResponse(output_tensors=[],
                                              error=pb_utils.TritonError(f"tokenizer failed: {exc}"))
        tensors = [pb_utils.Tensor("input_ids", ids), pb_utils.Tensor("attention_mask", mask)]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def finalize(self):
        """Release the tokenizer."""
        self.tokenizer = None
