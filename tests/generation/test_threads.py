"""Decoding on the CPU runs on one thread, and leaves the caller's thread count as it was."""

import torch

from tests.generation.helpers import random_gpt
from tinylm.generation import GenerationSettings, generate


def test_cpu_decoding_uses_one_thread_and_restores_the_callers_setting():
    model = random_gpt()
    threads_while_decoding = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        generate(
            model, [1, 2], GenerationSettings(max_new_tokens=5, stop_at_eos=False), eos_id=0,
            on_token=lambda token: threads_while_decoding.append(torch.get_num_threads()),
        )  # fmt: skip
        assert threads_while_decoding == [1] * 5
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
