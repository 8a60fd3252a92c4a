"""Download and tokenize without training: python scripts/prepare_data.py data=tinystories"""

import hydra
from omegaconf import DictConfig

from tinylm.commands import run
from tinylm.commands.prepare_data import prepare_data


@hydra.main(config_path="../conf", config_name="prepare_data", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(prepare_data, cfg)


if __name__ == "__main__":
    main()
