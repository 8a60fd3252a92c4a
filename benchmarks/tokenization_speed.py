"""Tokenization throughput, and how long a start takes with and without the tokenized cache.

    python benchmarks/tokenization_speed.py ../shared/data/tinystories/*.txt --repeat 4

Reads the given .txt files (TinyStories layout: stories separated by <|endoftext|> lines),
repeats them `--repeat` times, and reports MB/s of:
  - tiktoken's GPT-2 encoder on one thread (the baseline),
  - tinylm's GPT-2 path (tiktoken's batch encoder on every core, as the cache writer calls it),
  - tinylm's BPE path (a 4,096-token byte-level BPE from 🤗 tokenizers, trained first),
then the time of a first `data=text` start (tokenize and write the cache) and a second one
(cache found by its fingerprint).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tinylm.data import TextDataModule
from tinylm.data.text_files import iter_pieces
from tinylm.data.token_cache import TokenizationStats, tokenize_stream
from tinylm.tokenizers import build_tokenizer


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=4, help="copies of the text to tokenize")
    parser.add_argument("--trials", type=int, default=3, help="best of this many timings")
    args = parser.parse_args()

    documents = [text for text, _ in iter_pieces(sorted(args.files))] * args.repeat
    megabytes = sum(len(d.encode()) for d in documents) / 1e6
    print(f"{len(documents):,} documents, {megabytes:.1f} MB, {os.cpu_count()} CPU cores")

    gpt2 = build_tokenizer({"kind": "tiktoken", "encoding": "gpt2"}, training_text=None)
    bpe_spec = {"kind": "bpe", "vocab_size": 4096, "train_sample_mb": 100}
    started = time.perf_counter()
    bpe = build_tokenizer(bpe_spec, lambda: iter(documents))
    print(f"BPE training (4,096 tokens, {min(megabytes, 100):.1f} MB): "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip

    def through_cache_writer(tokenizer):
        stats = TokenizationStats()
        for _ in tokenize_stream(((d, True, None) for d in documents), tokenizer, stats):
            pass

    def tiktoken_one_thread():
        gpt2.encoding.encode_ordinary_batch(documents, num_threads=1)

    rows = [
        ("tiktoken gpt2, 1 thread", tiktoken_one_thread),
        ("tinylm gpt2 (all cores)", lambda: through_cache_writer(gpt2)),
        ("tinylm bpe-4096 (all cores)", lambda: through_cache_writer(bpe)),
    ]
    for name, run in rows:
        seconds = best_of(args.trials, run)
        print(f"{name:30s} {megabytes / seconds:8.1f} MB/s")

    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus.txt"
        corpus.write_text("\n<|endoftext|>\n".join(documents))

        def start() -> None:
            TextDataModule(path=str(corpus), tokenizer={"kind": "tiktoken", "encoding": "gpt2"},
                           block_size=256, batch_size=16, cache_dir=folder).setup()  # fmt: skip

        first = best_of(1, start)
        second = best_of(args.trials, start)
        print(f"data=text start, gpt2: first (tokenize + write) {first:.2f} s, "
              f"second (cached) {second * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
