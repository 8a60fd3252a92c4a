#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one call (about 6 minutes on an H100/H200):
#   bash benchmarks/gpu_check.sh [outdir]
# 1. the GPU-relevant tests: bf16-mixed, fused AdamW, compile (on by default on CUDA), flash
#    attention, MFU, compiled checkpoints with plain names;
# 2. GPT-2 124M (context 1024, GPT-2's 50,257-token vocabulary, random tokens) trained for 150
#    steps as a hand-written loop (eager and compiled) and as scripts/train.py (eager and
#    compiled), bf16-mixed: ms/step, tokens/s, MFU, peak GPU memory, start-up;
# 3. generation speed of GPT-2 124M with the KV cache.
# Figures go to stdout and to <outdir> (default outputs/benchmarks/gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/benchmarks/gpu}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

# The runs' checkpoints (1.5 GB for GPT-2) stay out of <outdir>, which keeps only the figures.
WORKDIR=$(mktemp -d)
$PYTHON -m pytest -q -p no:cacheprovider tests/training/test_gpu.py tests/training/test_compile.py \
    tests/training/test_optim.py >"$OUT/tests.txt" 2>&1 || true
tail -n 15 "$OUT/tests.txt"

# --peak-tflops: Lightning's table has no plain "NVIDIA H200" (and lists H200 SXM's sparse
# bf16 figure); 989 is the dense bf16 peak of an H100 SXM and an H200.
$PYTHON benchmarks/train_speed.py --device cuda --synthetic-vocab 50257 --experiment none \
    --variants loop,loop-compiled,pipeline,pipeline-compiled --peak-tflops "${PEAK_TFLOPS:-989}" \
    --workdir "$WORKDIR" \
    model=gpt2 data.batch_size=16 trainer.max_steps=150 trainer.val_check_interval=75 \
    trainer.limit_val_batches=5 optimizer.warmup_steps=15 trainer.log_every_n_steps=25 \
    2>&1 | tee "$OUT/train_speed.txt"

$PYTHON benchmarks/generation_speed.py --device cuda --models gpt2 --new-tokens 256 \
    --strategy sample --top-k 200 --repeats 3 2>&1 | tee "$OUT/generation_speed.txt"
