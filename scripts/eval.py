"""Evaluate a checkpoint: python scripts/eval.py ckpt_path=<run folder> (see conf/eval.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.commands import run
from tinylm.commands.eval import evaluate


@hydra.main(config_path="../conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    return run(evaluate, cfg)


if __name__ == "__main__":
    main()
