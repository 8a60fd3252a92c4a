"""Train a GPT: python scripts/train.py model=small data=tinystories (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.training import train
from tinylm.utils.cli import exits_cleanly_on_user_error


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
@exits_cleanly_on_user_error
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
