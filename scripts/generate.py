"""Generate text from a checkpoint: python scripts/generate.py ckpt_path=<run folder> prompt="Once"
(see conf/generate.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.generation import generate_from_checkpoint
from tinylm.utils.cli import exits_cleanly_on_user_error


@hydra.main(config_path="../conf", config_name="generate", version_base="1.3")
@exits_cleanly_on_user_error
def main(cfg: DictConfig) -> None:
    generate_from_checkpoint(cfg)


if __name__ == "__main__":
    main()
