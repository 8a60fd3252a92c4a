"""Evaluate a checkpoint: python scripts/eval.py ckpt_path=<run folder> data=text data.path=...
(see conf/eval.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.evaluation import evaluate
from tinylm.utils.cli import exits_cleanly_on_user_error


@hydra.main(config_path="../conf", config_name="eval", version_base="1.3")
@exits_cleanly_on_user_error
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["loss"]


if __name__ == "__main__":
    main()
