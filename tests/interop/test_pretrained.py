"""🤗 transformers -> tinylm: a GPT-2 folder written by save_pretrained (a small random model and a
tokenizer made here) read as ckpt_path and as init_from; hub ids offline; models tinylm cannot
represent."""

import itertools
import json
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    OPTConfig,
    PreTrainedTokenizerFast,
    Qwen3Config,
)

from tests.conftest import compose_config, compose_train, make_story_corpus, run_script
from tinylm.checkpoint import load_checkpoint
from tinylm.commands.eval import evaluate
from tinylm.commands.generate import generate
from tinylm.errors import CheckpointError
from tinylm.tokenizers import EOS_TEXT, saved_tokenizer_spec
from tinylm.training import fit

TEXT = "Once upon a time, Tom had a dog. They went to the park."


def save_random_gpt2(folder: Path, activation: str = "gelu_new") -> Path:
    """A byte-level BPE learned from the story corpus with 🤗 tokenizers, and a random
    GPT2LMHeadModel of its vocabulary, saved as save_pretrained saves them."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[EOS_TEXT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    backend.train_from_iterator(make_story_corpus(200), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS_TEXT)
    eos = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2,
                        n_head=4, activation_function=activation, bos_token_id=eos,
                        eos_token_id=eos)  # fmt: skip
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory) -> Path:
    return save_random_gpt2(tmp_path_factory.mktemp("hf_gpt2"))


@pytest.mark.parametrize("activation, tolerance", [("gelu", 0.0), ("gelu_new", 1e-6)])
def test_a_transformers_gpt2_gives_the_same_logits_and_ids_in_tinylm(
    activation, tolerance, tmp_path
):
    folder = save_random_gpt2(tmp_path, activation)
    loaded = load_checkpoint(folder)
    hf_model = GPT2LMHeadModel.from_pretrained(folder).eval()
    hf_tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    assert loaded.model.config.gelu == ("exact" if activation == "gelu" else "tanh")
    ids = loaded.tokenizer.encode(TEXT)
    assert ids == hf_tokenizer(TEXT)["input_ids"] and loaded.tokenizer.decode(ids) == TEXT
    batch = torch.randint(0, hf_model.config.vocab_size, (2, 64), generator=torch.Generator())
    with torch.no_grad():
        # Exact GELU: the same operations, the same bits; gelu_new writes tanh's formula out.
        torch.testing.assert_close(loaded.model(batch), hf_model(batch).logits,
                                   rtol=0, atol=tolerance)  # fmt: skip
    vocab = hf_model.config.vocab_size
    assert loaded.model.tok_emb.weight[vocab:].eq(0).all()  # tinylm's padding rows


def test_init_from_starts_a_new_run_from_the_folders_weights(hf_folder, story_file, tmp_path):
    # One step at a learning rate of 1e-7 moves each weight by about 1e-7: the run started from
    # the folder's weights, not from a new initialisation (whose weights differ by ~0.02).
    cfg = compose_train(
        tmp_path, f"init_from={hf_folder}", "data=text", f"data.path={story_file}",
        "model.dropout=0.1", "data.batch_size=2", "trainer.max_steps=1",
        "trainer.val_check_interval=1", "trainer.limit_val_batches=1", "optimizer.lr=1e-7",
        "optimizer.min_lr=0", "logger=csv", "callbacks.progress_bar=null",
    )  # fmt: skip
    result = fit(cfg)
    assert result.steps == 1
    source = load_checkpoint(hf_folder)
    trained = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert trained.model.config.d_model == 32 and trained.model.config.block_size == 64
    assert trained.model.config.gelu == "tanh" and trained.model.config.dropout == 0.1
    assert trained.tokenizer.encode(TEXT) == source.tokenizer.encode(TEXT)
    source_weights = source.model.state_dict()
    for name, weight in trained.model.state_dict().items():
        assert (weight - source_weights[name]).abs().max() < 1e-6, name
    assert any(not torch.equal(w, source_weights[n]) for n, w in trained.model.state_dict().items())


def test_generate_and_eval_take_a_transformers_folder_as_ckpt_path(hf_folder, story_file,
                                                                    tmp_path):  # fmt: skip
    hf_model = GPT2LMHeadModel.from_pretrained(hf_folder).eval()
    cfg = compose_config("generate", f"ckpt_path={hf_folder}", f"prompt='{TEXT}'",
                         "strategy=greedy", "max_new_tokens=12", "stop_at_eos=false",
                         f"paths.output_dir={tmp_path}")  # fmt: skip
    (record,) = generate(cfg)
    prompt = load_checkpoint(hf_folder).tokenizer.encode(TEXT)
    expected = hf_model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=12,
                                 eos_token_id=None)  # fmt: skip
    assert record["tokens"] == expected[0, len(prompt) :].tolist()

    cfg = compose_config("eval", f"ckpt_path={hf_folder}", "data=text", f"data.path={story_file}",
                         "data.batch_size=2", "limit_batches=1", f"paths.cache_dir={tmp_path}",
                         f"paths.output_dir={tmp_path}")  # fmt: skip
    numbers = evaluate(cfg)
    # The same first validation batch, scored by transformers.
    loaded = load_checkpoint(hf_folder)
    datamodule = instantiate(cfg.data, _partial_=True, _convert_="all")(
        block_size=64, tokenizer=saved_tokenizer_spec(loaded.tokenizer)
    )
    datamodule.setup("validate")
    x, y = next(itertools.islice(datamodule.val_dataloader(), 1))
    with torch.no_grad():
        logits = hf_model(x).logits
    expected_loss = F.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    assert numbers["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert numbers["tokens"] == 2 * 64 and numbers["bpb"] > 0


def test_a_hub_id_that_cannot_be_downloaded_is_one_sentence(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint("tinylm-tests/no-such-gpt2")
    message = str(raised.value)
    assert message.startswith("Could not load tinylm-tests/no-such-gpt2 from the 🤗 Hub (")
    assert "\n" not in message and message.endswith("save_pretrained.")


def test_models_tinylm_cannot_represent_are_refused_by_name(tmp_path):
    OPTConfig(hidden_size=32, num_attention_heads=4).save_pretrained(tmp_path / "opt")
    with pytest.raises(CheckpointError, match="is a opt model; tinylm reads gpt2, llama, qwen3, "
                       "nanochat models"):  # fmt: skip
        load_checkpoint(tmp_path / "opt")
    LlamaConfig(hidden_size=32, num_attention_heads=4, hidden_act="gelu",
                rope_parameters={"rope_type": "linear", "rope_theta": 1e4, "factor": 2.0},
                ).save_pretrained(tmp_path / "llama")  # fmt: skip
    with pytest.raises(CheckpointError, match="hidden_act 'gelu', rope_type 'linear'"):
        load_checkpoint(tmp_path / "llama")
    Qwen3Config(hidden_size=32, num_attention_heads=4, head_dim=16).save_pretrained(tmp_path / "q")
    with pytest.raises(CheckpointError, match="head_dim 16 apart from hidden_size"):
        load_checkpoint(tmp_path / "q")
    GPT2Config(activation_function="relu", scale_attn_by_inverse_layer_idx=True).save_pretrained(
        tmp_path / "relu"
    )
    with pytest.raises(CheckpointError, match="activation_function 'relu'.*inverse_layer_idx"):
        load_checkpoint(tmp_path / "relu")
    GPT2Config().save_pretrained(tmp_path / "no_weights")
    with pytest.raises(CheckpointError, match="is not a complete 🤗 transformers model folder"):
        load_checkpoint(tmp_path / "no_weights")


@pytest.mark.slow
def test_the_train_script_names_settings_that_contradict_init_from(hf_folder, story_file,
                                                                   tmp_path):  # fmt: skip
    result = run_script(
        "train", f"init_from={hf_folder}", "data=text", f"data.path={story_file}",
        "model.n_layer=4", "tokenizer=char", f"paths.log_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "model.n_layer=4 where the source has 2" in line
    assert "tokenizer.kind=char where the source has bpe" in line
    assert not (tmp_path / "cache").exists()  # refused before any data was prepared
    (result_file,) = tmp_path.glob("train/runs/*/result.json")
    assert json.loads(result_file.read_text())["status"] == "failed"


def copy_without(folder: Path, destination: Path, *names: str) -> Path:
    destination.mkdir()
    for path in folder.iterdir():
        if path.name not in names:
            (destination / path.name).write_bytes(path.read_bytes())
    return destination


class RunsCode:
    """What a malicious pytorch_model.bin pickles: unpickling it would call print."""

    def __reduce__(self):
        return (print, ("this ran on loading",))


def test_a_folder_whose_files_cannot_be_trusted_is_one_sentence(hf_folder, tmp_path, capfd):
    no_tokenizer = copy_without(hf_folder, tmp_path / "no_tokenizer", "tokenizer.json")
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(no_tokenizer)
    assert str(raised.value) == (
        f"{no_tokenizer} has no tokenizer files (tokenizer.json, or vocab.json and merges.txt); "
        "copy in those of the tokenizer the model was trained with."
    )

    other_vocabulary = copy_without(hf_folder, tmp_path / "other_vocabulary")
    config = json.loads((other_vocabulary / "config.json").read_text())
    vocab_size = config["vocab_size"]
    config["vocab_size"] = vocab_size + 10
    (other_vocabulary / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(other_vocabulary)
    assert str(raised.value).startswith(
        f"{other_vocabulary / 'model.safetensors'} holds transformer.wte.weight of shape "
        f"[{vocab_size}, 32] "
        f"where {other_vocabulary / 'config.json'} (vocab_size {vocab_size + 10}, hidden size 32)"
    )

    truncated = copy_without(hf_folder, tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(truncated)
    assert str(raised.value).startswith(f"{weights} cannot be read (")
    assert str(raised.value).endswith("damaged or was cut short; download or export it again.")

    unsafe = copy_without(hf_folder, tmp_path / "unsafe", "model.safetensors")
    torch.save({"weights": RunsCode()}, unsafe / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(unsafe)
    assert str(raised.value).startswith(f"{unsafe}'s pytorch_model.bin asks to run code when")
    assert "weights_only=False" not in str(raised.value) and "\n" not in str(raised.value)
    assert "this ran on loading" not in capfd.readouterr().out
