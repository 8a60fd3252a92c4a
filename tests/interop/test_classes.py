"""Export and import per 🤗 transformers class: a tinylm model whose switches one class computes
is written as that class (logits within 1e-4, the same greedy text) and read back bit for bit;
any other combination is refused in one sentence naming the switches to change."""

import json

import pytest
import torch

from tinylm.checkpoint import load_checkpoint
from tinylm.errors import ConfigError
from tinylm.generation import GenerationSettings, generate
from tinylm.interop.classes import matching_model_type
from tinylm.interop.export import export_to_transformers
from tinylm.model import GPT, GPTConfig
from tinylm.tokenizers import CharTokenizer

LLAMA = dict(pos_encoding="rope", norm="rmsnorm", mlp="swiglu")
QWEN3 = dict(LLAMA, qk_norm=True, bias=False)
NANOCHAT = dict(pos_encoding="rope", norm="rmsnorm", norm_weight=False, mlp="relu2",
                qk_norm=True, embed_norm=True, bias=False, tie_embeddings=False,
                logit_softcap=15.0)  # fmt: skip
MODELS = {
    "gpt2": ("GPT2LMHeadModel", dict(gelu="tanh")),
    "gpt2 without norm gains": ("GPT2LMHeadModel", dict(norm_weight=False, bias=False)),
    "llama": ("LlamaForCausalLM", LLAMA),
    "llama, grouped-query, untied, no bias": (
        "LlamaForCausalLM",
        dict(LLAMA, n_kv_head=1, tie_embeddings=False, bias=False, rope_base=500.0, norm_eps=1e-6),
    ),  # fmt: skip
    "llama without norm gains": ("LlamaForCausalLM", dict(LLAMA, norm_weight=False)),
    "qwen3": ("Qwen3ForCausalLM", QWEN3),
    "qwen3, grouped-query, untied": (
        "Qwen3ForCausalLM",
        dict(QWEN3, n_kv_head=1, tie_embeddings=False),
    ),
    "nanochat (arch=modern)": ("NanoChatForCausalLM", NANOCHAT),
    "nanochat, grouped-query, tied, no cap": (
        "NanoChatForCausalLM",
        dict(NANOCHAT, n_kv_head=1, tie_embeddings=True, logit_softcap=None),
    ),  # fmt: skip
}


def random_model(**switches) -> GPT:
    """A small GPT whose norm gains and biases are not their initial ones and logits are far
    from uniform, so that a misplaced tensor or a wrong rotation shows."""
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=9, block_size=32, n_layer=2, n_head=4, d_model=32, d_ff=48,
                       **switches)  # fmt: skip
    model = GPT(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:  # gains and biases
                parameter.add_(0.3 * torch.randn_like(parameter))
        model.tok_emb.weight.mul_(20)
    return model


@pytest.mark.parametrize("name", MODELS)
def test_a_model_is_exported_as_the_class_that_computes_it_and_read_back_unchanged(name, tmp_path):
    class_name, switches = MODELS[name]
    tokenizer = CharTokenizer("abcdef .")
    model = random_model(**switches)
    folder = tmp_path / "hf"
    written, difference = export_to_transformers(model, tokenizer, folder)
    assert written == class_name and difference < 1e-4
    assert json.loads((folder / "config.json").read_text())["architectures"] == [class_name]

    from transformers import AutoModelForCausalLM

    hf_model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.randint(0, 9, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(hf_model(ids).logits, model(ids), rtol=0, atol=1e-4)
    prompt = [1, 2, 3]
    greedy = GenerationSettings(strategy="greedy", max_new_tokens=20, stop_at_eos=False)
    (completion,) = generate(model, prompt, greedy, tokenizer.eos_id)
    hf_tokens = hf_model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=20,
                                  min_new_tokens=20, eos_token_id=None)  # fmt: skip
    assert completion.tokens == hf_tokens[0, 3:].tolist()

    loaded = load_checkpoint(folder)  # what init_from and ckpt_path read
    for switch in ("pos_encoding", "norm", "mlp", "qk_norm", "embed_norm", "tie_embeddings",
                   "logit_softcap", "kv_heads", "rope_base", "norm_eps"):  # fmt: skip
        assert getattr(loaded.model.config, switch) == getattr(model.config, switch), switch
    # Norms without gains come back with gains of one, and missing biases as zeros, where the
    # class has them (GPT-2, Llama, Qwen3): the same function.
    theirs = loaded.model.state_dict()
    for tensor_name, tensor in model.state_dict().items():
        if tensor_name in theirs:
            rows = (
                slice(0, 9) if tensor_name in ("tok_emb.weight", "lm_head.weight") else slice(None)
            )
            assert torch.equal(theirs[tensor_name][rows], tensor[rows]), tensor_name
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids), model(ids), rtol=0, atol=1e-5)
    if class_name != "GPT2LMHeadModel":  # GPT-2 has biases in every layer
        assert loaded.model.config.bias == model.config.bias


@pytest.mark.parametrize(
    "switches, nearest, needed",
    [
        (dict(pos_encoding="rope"), "GPT2LMHeadModel", "model.pos_encoding=learned"),
        (dict(LLAMA, logit_softcap=30.0), "LlamaForCausalLM", "model.logit_softcap=null"),
        (dict(NANOCHAT, norm_weight=True), "NanoChatForCausalLM", "model.norm_weight=false"),
        (dict(pos_encoding="rope", norm="rmsnorm", mlp="relu2"), "LlamaForCausalLM",
         "model.mlp=swiglu"),
    ],
)  # fmt: skip
def test_a_model_no_class_computes_is_refused_naming_the_switches(switches, nearest, needed,
                                                                  tmp_path):  # fmt: skip
    model = random_model(**switches)
    with pytest.raises(ConfigError) as raised:
        export_to_transformers(model, CharTokenizer("abc"), tmp_path / "hf")
    message = str(raised.value)
    assert f"the nearest, {nearest}, needs {needed}" in message and "\n" not in message
    assert not (tmp_path / "hf").exists() and list(tmp_path.iterdir()) == []


def test_the_recipes_match_their_classes():
    from omegaconf import OmegaConf

    from tests.conftest import CONF_DIR

    for recipe, model_type in (("gpt2", "gpt2"), ("modern", "nanochat")):
        switches = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "arch" / f"{recipe}.yaml"))
        switches.pop("zero_init_proj")
        assert matching_model_type(GPTConfig(vocab_size=9, **switches)) == model_type
