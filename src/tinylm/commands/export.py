"""`python scripts/export.py` (conf/export.yaml): a checkpoint as a 🤗 transformers folder of the
class that computes its model (GPT-2, Llama, Qwen3 or NanoChat)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from tinylm.checkpoint import load_checkpoint
from tinylm.errors import ConfigError
from tinylm.interop import require_transformers

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> str:
    """Write cfg.ckpt_path's model and tokenizer into cfg.output_dir; return the folder."""
    if not cfg.get("output_dir"):
        raise ConfigError(
            "output_dir is not set; give the folder to write, e.g. output_dir=exports/my-model."
        )
    require_transformers()
    from tinylm.interop.export import export_to_transformers  # imports transformers

    output_dir = Path(cfg.output_dir).expanduser()
    loaded = load_checkpoint(cfg.ckpt_path)
    log.info(f"Checkpoint: {loaded.describe()}")
    class_name, difference = export_to_transformers(loaded.model, loaded.tokenizer, output_dir)
    log.info(
        f"Wrote {output_dir}: {class_name}.from_pretrained gives tinylm's logits (largest "
        f"difference {difference:.1e}), AutoTokenizer.from_pretrained its tokenizer's ids."
    )
    log.info(
        f"Evaluate it with lm-evaluation-harness: lm_eval --model hf --model_args "
        f"pretrained={output_dir} --tasks hellaswag"
    )
    return str(output_dir)
