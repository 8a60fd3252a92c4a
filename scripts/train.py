"""Train a GPT: python scripts/train.py model=small data=tinystories (see conf/train.yaml).

A sweep: python scripts/train.py -m optimizer.lr=1e-3,3e-4 model=tiny,small
"""

import hydra
from omegaconf import DictConfig

from tinylm.commands import run
from tinylm.commands.train import train


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return run(train, cfg)


if __name__ == "__main__":
    main()
