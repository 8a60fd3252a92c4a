"""How a tinylm GPT that GPT-2 has no slot for is written: no biases, sinusoidal positions, the
embedding's padding rows."""

import torch
from transformers import GPT2LMHeadModel

from tinylm.interop.export import export_to_transformers
from tinylm.model import GPT, GPTConfig
from tinylm.tokenizers import CharTokenizer


def test_a_bias_free_sinusoidal_model_is_written_as_the_gpt2_it_equals(tmp_path):
    tokenizer = CharTokenizer("abcdef .")
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=2, n_head=2,
                       d_model=16, d_ff=32, bias=False, pos_encoding="sinusoidal",
                       gelu="tanh")  # fmt: skip
    model = GPT(config).eval()
    export_to_transformers(model, tokenizer, tmp_path / "hf")
    hf_model = GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()

    biases = [p for name, p in hf_model.named_parameters() if name.endswith(".bias")]  # 6 a block
    assert len(biases) == 2 * 6 + 1 and all(bias.eq(0).all() for bias in biases)
    assert torch.equal(hf_model.transformer.wpe.weight, model.pos_table)
    # 9 tokens: the 64-row padding stays behind, and the LM head is the embedding itself.
    assert hf_model.transformer.wte.weight.shape == (9, 16)
    assert hf_model.lm_head.weight.data_ptr() == hf_model.transformer.wte.weight.data_ptr()
    ids = torch.randint(0, 9, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(hf_model(ids).logits, model(ids), rtol=0, atol=1e-6)
