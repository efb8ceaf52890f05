"""The served MiniLM tokenizer (`tokenizers` alone) gives the ids and masks transformers gives, byte for byte.

The tokenizer stub used to import transformers (4.6 s and ~200 MB per stub); it now loads tokenizer.json
with the `tokenizers` package. Any difference would change every served embedding, so the outputs of both
are compared as arrays (dtype, shape, every element) on texts chosen to hit the tokenizer's corner cases.
"""

import numpy as np
import pytest

TRICKY = [
    "hello world",
    "",
    "   ",
    "Hello, World! HELLO world?",
    "caf\u00e9 na\u00efve \u00fcber Stra\u00dfe r\u00e9sum\u00e9",  # accents kept (strip_accents unset, lowercase)
    "cafe\u0301 with a combining acute",
    "\u4eca\u5929\u5929\u6c14\u5f88\u597d \u6771\u4eac \ud55c\uad6d\uc5b4",  # CJK split per character
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u05e9\u05dc\u05d5\u05dd",
    "emoji \U0001f600\U0001f680 and \u2764\ufe0f flags \U0001f1eb\U0001f1f7",
    "zero\u200bwidth\u200d joiner\ufeff bom \u00a0nbsp",
    "tabs\tand\nnew\r\nlines\x00nul\x07bell",
    "[CLS] literal [SEP] special [PAD] tokens [MASK] [UNK]",
    "unaffable antidisestablishmentarianism supercalifragilisticexpialidocious",
    "numbers 3.14159 1,000,000 2026-12-02 #hash @user http://example.com/a?b=c",
    "\u00fcber lange S\u00e4tze " * 200,  # truncated at 256 tokens
    "x" * 5000,  # one long word: [UNK] or wordpieces
    " ".join(["word"] * 254),  # exactly 256 with [CLS]/[SEP]
    " ".join(["word"] * 255),  # one over: truncated
]


@pytest.fixture(scope="module")
def both():
    """(transformers tokenizer, model module, model folder)."""
    from tritonstack.convert.reference import minilm_tokenizer_model as model
    from tritonstack.convert.reference.minilm_encoder import model_dir, tokenizer

    return tokenizer(), model, model_dir()


def _reference(tok, texts, multiple):
    batch = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="np",
                pad_to_multiple_of=multiple)
    return batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)


@pytest.mark.parametrize("multiple", [None, 16])
def test_same_ids_and_masks_as_transformers(both, multiple):
    tok, model, folder = both
    ours = model.load_tokenizer(folder, 256, multiple)
    batches = [TRICKY, TRICKY[:1], TRICKY[1:2], TRICKY[4:10], [TRICKY[-1], TRICKY[0]]]
    batches += [[text] for text in TRICKY]
    for texts in batches:
        expected, got = _reference(tok, texts, multiple), model.tokenize(ours, texts)
        for want, have in zip(expected, got, strict=True):
            assert have.dtype == want.dtype == np.int64
            assert have.shape == want.shape, texts
            assert np.array_equal(have, want), texts
    ids, mask = model.tokenize(ours, TRICKY)
    print(f"\ncompared {len(batches)} batches; longest padded to {ids.shape[1]} tokens")
    assert ids.shape[1] == 256 and mask[-1].all()


def test_tokenizer_model_does_not_import_transformers():
    import subprocess
    import sys

    code = ("import sys; from tritonstack.convert.reference import minilm_tokenizer_model as m; "
            "from tritonstack.convert.reference.minilm_encoder import model_dir; "
            "m.tokenize(m.load_tokenizer(model_dir()), ['hi']); "
            "print(sorted(k for k in ('transformers', 'torch') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
