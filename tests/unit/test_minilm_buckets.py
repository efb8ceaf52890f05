"""The MiniLM tokenizer pads to a few length buckets, and that padding leaves the embedding unchanged.

Triton's dynamic batcher merges only requests of equal shape and closes a batch at the first request of
another shape. With padding to multiples of 16, the W4 bench texts (8-31 tokens) came out as 16 or 32
tokens in random order and the encoder ran 2.1 texts per batch; with the buckets they share one shape.
Padding with attention mask 0 must not move the mean-pooled embedding beyond the FP32 tolerance.
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def model():
    from tritonstack.convert.reference import minilm_tokenizer_model

    return minilm_tokenizer_model


@pytest.fixture(scope="module")
def ours(model):
    """The served tokenizer as the config sets it up (buckets, no rounding to a multiple)."""
    from tritonstack.convert.reference.minilm import tokenizer_spec
    from tritonstack.convert.reference.minilm_encoder import model_dir

    parameters = tokenizer_spec().to_config().parameters
    buckets = model.parse_buckets(parameters["length_buckets"].string_value)
    return model.load_tokenizer(model_dir(), int(parameters["max_seq_length"].string_value)), buckets


def _served(model, ours, texts):
    tokenizer, buckets = ours
    return model.pad_to_bucket(*model.tokenize(tokenizer, texts), buckets)


def test_buckets_parsed_and_checked(model):
    assert model.parse_buckets("32,64,128,256") == (32, 64, 128, 256)
    assert model.parse_buckets("") == ()
    for bad in ("64,32,256", "32,32,256", "32,64", "0,256"):
        with pytest.raises(ValueError, match="must be distinct ascending lengths ending at the maximum"):
            model.parse_buckets(bad)


def test_pad_to_bucket_pads_ids_and_masks_on_the_right(model):
    ids, mask = np.array([[101, 7, 102]], dtype=np.int64), np.ones((1, 3), dtype=np.int64)
    padded_ids, padded_mask = model.pad_to_bucket(ids, mask, (4, 8), pad_id=0)
    assert padded_ids.tolist() == [[101, 7, 102, 0]] and padded_mask.tolist() == [[1, 1, 1, 0]]
    assert padded_ids.dtype == padded_mask.dtype == np.int64
    assert model.pad_to_bucket(np.ones((2, 5), np.int64), np.ones((2, 5), np.int64), (4, 8))[0].shape == (2, 8)
    assert model.pad_to_bucket(ids, mask, ())[0].shape == (1, 3)  # no buckets: as tokenized


def test_bench_texts_share_one_shape(model, ours):
    """The W4 texts: one request per text, every request the same shape (the encoder can batch them)."""
    from tritonstack.loadtest.bench.workloads import _texts

    texts = _texts(64)
    shapes = {_served(model, ours, [text])[0].shape for text in texts}
    lengths = model.tokenize(ours[0], texts)[1].sum(axis=1)
    print(f"\nW4 texts: {lengths.min()}-{lengths.max()} tokens -> shapes {sorted(shapes)}")
    assert shapes == {(1, 32)}


def test_longer_texts_take_the_next_bucket_and_stop_at_the_maximum(model, ours):
    ids, mask = _served(model, ours, [" ".join(["word"] * 40)])
    assert ids.shape == (1, 64) and mask.sum() == 42
    ids, mask = _served(model, ours, ["short", " ".join(["word"] * 400)])  # truncated at 256
    assert ids.shape == (2, 256) and mask[1].all() and mask[0].sum() == 3


def test_bucket_padding_keeps_the_embedding(model, ours):
    """Each text alone, unpadded, vs the same texts padded to their bucket and to 256 (mask 0)."""
    import torch
    from tritonstack.convert.precision import DEFAULT_TOLERANCES, Precision
    from tritonstack.convert.reference.minilm_encoder import SentenceEncoder

    texts = ["hi", "Triton serves the encoder behind a tokenizer step.",
             "A much longer sentence, with punctuation; numbers like 3.14159 and 42, and sesquipedalian words "
             "to make the padding and the attention mask matter for mean pooling, " * 2]
    encoder, tokenizer = SentenceEncoder(), ours[0]

    def embed(ids, mask):
        with torch.no_grad():
            return encoder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()

    alone = np.concatenate([embed(*model.tokenize(tokenizer, [text])) for text in texts])
    bucketed = np.concatenate([embed(*_served(model, ours, [text])) for text in texts])
    widest = embed(*model.pad_to_bucket(*model.tokenize(tokenizer, texts), (256,)))
    tolerance = DEFAULT_TOLERANCES[Precision.FP32]
    for padded in (bucketed, widest):
        diff = np.abs(padded - alone).max()
        cosine = (padded * alone).sum(1).min()  # both L2-normalised
        print(f"\npadded vs unpadded: max abs diff {diff:.2e}, min cosine {cosine:.8f}")
        np.testing.assert_allclose(padded, alone, atol=tolerance.atol, rtol=tolerance.rtol)
        assert cosine >= tolerance.min_cosine


def test_encoder_batches_without_a_queue_delay():
    """The encoder's batch grows in its queue while the previous one runs (~10 ms per text): W4 ran
    12.1-12.2 texts per batch with a 1000 us delay, 15.4-15.6 with none."""
    from tritonstack.convert.reference.minilm import encoder_spec

    config = encoder_spec("minilm_encoder").to_config()
    assert config.HasField("dynamic_batching") and config.dynamic_batching.max_queue_delay_microseconds == 0
    assert config.max_batch_size == 16
