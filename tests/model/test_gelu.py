"""model.gelu: exact GELU (what every checkpoint before this setting used) or GPT-2's tanh
approximation."""

import math

import pytest
import torch

from tinylm.checkpoint import load_checkpoint
from tinylm.errors import ConfigError
from tinylm.model import GPTConfig
from tinylm.model.mlp import MLP


def test_a_checkpoint_written_before_the_setting_existed_computes_as_before(trained_run, tmp_path):
    path = trained_run / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["model_config"].pop("gelu") == "exact"
    torch.save(checkpoint, tmp_path / "old.ckpt")
    old, new = load_checkpoint(tmp_path / "old.ckpt"), load_checkpoint(path)
    assert old.model.config.gelu == "exact"
    ids = torch.tensor([new.tokenizer.encode("Once upon a time, Tom had a cat.")])
    with torch.no_grad():
        assert torch.equal(old.model(ids), new.model(ids))


def test_tanh_is_gpt2s_approximation_of_gelu():
    x = torch.linspace(-6, 6, 1001)
    gpt2 = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    config = dict(vocab_size=10, d_model=4, d_ff=8)
    tanh = MLP(GPTConfig(**config, gelu="tanh")).act(x)
    exact = MLP(GPTConfig(**config)).act(x)
    torch.testing.assert_close(tanh, gpt2, rtol=0, atol=1e-6)
    torch.testing.assert_close(exact, 0.5 * x * (1 + torch.erf(x / math.sqrt(2))))
    assert (tanh - exact).abs().max() > 1e-4  # two different functions


def test_an_unknown_gelu_is_refused():
    with pytest.raises(ConfigError, match="model.gelu must be one of"):
        GPTConfig(vocab_size=10, gelu="relu")
