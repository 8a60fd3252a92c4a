"""Train a GPT: python scripts/train.py model=small data=tinystories (see conf/train.yaml).

A sweep: python scripts/train.py -m optimizer.lr=1e-3,3e-4 model=tiny,small
"""

import hydra
from omegaconf import DictConfig

from tinylm.experiments.jobs import train_job
from tinylm.utils.cli import exits_cleanly_on_user_error


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
@exits_cleanly_on_user_error
def main(cfg: DictConfig) -> float | None:
    return train_job(cfg)


if __name__ == "__main__":
    main()
