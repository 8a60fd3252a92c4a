import itertools

import numpy as np
import torch

from tinylm.data.windows import RandomWindows, SequentialWindows

TOKENS = np.arange(10_000, dtype=np.uint16)  # token i is i: a window shows where it came from


def take(dataset, n):
    return list(itertools.islice(iter(dataset), n))


def test_targets_are_inputs_shifted_by_one():
    x, y = RandomWindows(TOKENS, block_size=16, batch_size=4, seed=0).batch(0)
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)


def test_the_batch_at_step_k_is_the_same_in_two_runs_and_after_a_resume():
    first = take(RandomWindows(TOKENS, 16, 4, seed=7), 12)
    second = take(RandomWindows(TOKENS, 16, 4, seed=7), 12)
    resumed = take(RandomWindows(TOKENS, 16, 4, seed=7, start_index=5), 7)
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    for (x1, _), (x3, _) in zip(first[5:], resumed, strict=True):
        assert torch.equal(x1, x3)
    other_seed = RandomWindows(TOKENS, 16, 4, seed=8).batch(0)[0]
    assert not torch.equal(first[0][0], other_seed)


def global_batch_of_step(step, batch_size, accumulate, world_size):
    """Every window one optimizer step trains on, over all micro-batches and ranks."""
    starts = []
    for rank in range(world_size):
        dataset = RandomWindows(TOKENS, 16, batch_size, 3, accumulate=accumulate,
                                rank=rank, world_size=world_size)  # fmt: skip
        for micro in range(accumulate):
            starts += dataset.batch(step * accumulate + micro)[0][:, 0].tolist()
    return starts


def test_a_step_sees_the_same_global_batch_however_it_is_split():
    one_device = global_batch_of_step(4, batch_size=8, accumulate=1, world_size=1)
    accumulated = global_batch_of_step(4, batch_size=4, accumulate=2, world_size=1)
    two_ranks = global_batch_of_step(4, batch_size=4, accumulate=1, world_size=2)
    two_ranks_accumulated = global_batch_of_step(4, batch_size=2, accumulate=2, world_size=2)
    assert sorted(one_device) == sorted(accumulated) == sorted(two_ranks)
    assert sorted(two_ranks) == sorted(two_ranks_accumulated)


def test_ranks_train_on_different_slices_of_the_global_batch():
    rank0 = RandomWindows(TOKENS, 16, 8, seed=0, rank=0, world_size=2).batch(3)[0][:, 0]
    rank1 = RandomWindows(TOKENS, 16, 8, seed=0, rank=1, world_size=2).batch(3)[0][:, 0]
    assert not set(rank0.tolist()) & set(rank1.tolist())


def test_windows_reach_the_last_token_and_never_past_it():
    tokens = np.arange(20, dtype=np.uint16)
    dataset = RandomWindows(tokens, block_size=16, batch_size=64, seed=0)
    starts = {int(dataset.batch(i)[0][b, 0]) for i in range(20) for b in range(64)}
    assert starts == {0, 1, 2, 3}  # 20 tokens hold windows of 17 starting at 0..3


def test_validation_windows_are_fixed_and_do_not_overlap():
    dataset = SequentialWindows(np.arange(50, dtype=np.uint16), block_size=16)
    assert len(dataset) == 3  # windows of 17 tokens, stepping by 16: 0-16, 16-32, 32-48
    x, y = dataset[2]
    assert x.tolist() == list(range(32, 48)) and y.tolist() == list(range(33, 49))
    assert torch.equal(dataset[1][0], SequentialWindows(np.arange(50), 16)[1][0])
