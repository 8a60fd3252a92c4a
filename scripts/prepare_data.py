"""Download and tokenize without training: python scripts/prepare_data.py data=tinystories"""

import hydra
from omegaconf import DictConfig

from tinylm.data.prepare import prepare
from tinylm.utils.cli import exits_cleanly_on_user_error


@hydra.main(config_path="../conf", config_name="prepare_data", version_base="1.3")
@exits_cleanly_on_user_error
def main(cfg: DictConfig) -> None:
    prepare(cfg)


if __name__ == "__main__":
    main()
