"""Bits per byte: each tokenizer's byte table, and val/bpb against a slow reference that decodes
every target token."""

import csv
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from tests.conftest import compose_config, make_story_corpus
from tinylm.checkpoint import load_checkpoint
from tinylm.evaluation import evaluate_model
from tinylm.model import GPT, GPTConfig
from tinylm.tokenizers import EOS_TEXT, BPETokenizer, CharTokenizer, saved_tokenizer_spec
from tinylm.tokenizers.tiktoken_tokenizer import TiktokenTokenizer

TEXT = f"Once upon a time, Zoë ate crème brûlée — 日本語 🙂\n\tnaïve café {EOS_TEXT} done."


def make_tokenizer(kind: str):
    if kind == "char":
        return CharTokenizer(TEXT)
    if kind == "bpe":
        return BPETokenizer.train([*make_story_corpus(50), TEXT], vocab_size=300, sample_mb=1)
    return TiktokenTokenizer("gpt2")


@pytest.mark.parametrize("kind", ["char", "bpe", "gpt2"])
def test_token_bytes_add_up_to_the_utf8_bytes_of_any_text(kind):
    tokenizer = make_tokenizer(kind)
    lengths = tokenizer.token_byte_lengths()
    assert lengths.shape == (tokenizer.vocab_size,)
    assert lengths[tokenizer.eos_id] == 0  # the end-of-text token stands for no text
    # Tokens that split a character into bytes (🙂 in byte-level BPE) count the bytes they hold;
    # "<|endoftext|>" written in the text is plain text, 13 bytes.
    assert lengths[tokenizer.encode(TEXT)].sum() == len(TEXT.encode("utf-8"))


def logged_validation(run) -> dict:
    with open(run / "csv" / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["val/loss"]]
    return {key: float(value) for key, value in rows[-1].items() if key.startswith("val/")}


def reference_bits_per_byte(folder, tmp_path, batch_size: int, batches: int) -> float:
    """Training's validation batches, each target's loss in float64, and its bytes found by
    decoding it; end-of-text targets left out."""
    loaded = load_checkpoint(folder / "run")
    tokenizer = loaded.tokenizer
    cfg = compose_config("eval", "data=text", f"data.path={folder / 'stories.txt'}",
                         f"data.batch_size={batch_size}",
                         f"paths.cache_dir={tmp_path}")  # fmt: skip
    datamodule = instantiate(cfg.data, _partial_=True, _convert_="all")(
        block_size=loaded.model.config.block_size, tokenizer=saved_tokenizer_spec(tokenizer)
    )
    datamodule.setup("validate")
    nats, n_bytes, special = 0.0, 0, 0
    with torch.no_grad():
        for x, y in itertools.islice(datamodule.val_dataloader(), batches):
            logits = loaded.model(x).double()
            losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            for loss, target in zip(losses.tolist(), y.flatten().tolist(), strict=True):
                if target == tokenizer.eos_id:
                    special += 1
                    continue
                text = tokenizer.decode([target])
                assert "\ufffd" not in text  # every target here decodes to whole characters
                nats += loss
                n_bytes += len(text.encode("utf-8"))
    assert special > 0  # the rule for special tokens was exercised
    return nats / (math.log(2) * n_bytes)


@pytest.mark.parametrize(
    "kind, batch_size, batches", [("char", 16, 50), ("bpe", 2, 10), ("gpt2", 2, 10)]
)
def test_val_bpb_equals_a_reference_that_decodes_every_target(
    kind, batch_size, batches, trained_run, trained_runs, tmp_path
):
    folder = trained_run if kind == "char" else trained_runs[kind]
    logged = logged_validation(folder / "run")
    reference = reference_bits_per_byte(folder, tmp_path, batch_size, batches)
    assert logged["val/bpb"] == pytest.approx(reference, rel=1e-6)


def test_a_char_model_on_ascii_text_has_bpb_equal_to_its_loss_in_bits():
    torch.manual_seed(0)
    text = " ".join(make_story_corpus(20))  # ASCII, no end-of-text token
    tokenizer = CharTokenizer(text)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=32, d_model=32)).eval()
    ids = torch.tensor(tokenizer.encode(text)[: 8 * 33]).view(8, 33)
    batches = [(ids[:4, :-1], ids[:4, 1:]), (ids[4:, :-1], ids[4:, 1:])]

    numbers = evaluate_model(model, batches, None, torch.device("cpu"),
                             tokenizer.token_byte_lengths())  # fmt: skip
    assert numbers["bytes"] == numbers["tokens"] == 8 * 32
    # Both sums are float32 on the device (tinylm.evaluation.Evaluation, validation's too).
    assert numbers["bpb"] == pytest.approx(numbers["loss"] / math.log(2), rel=1e-6)
