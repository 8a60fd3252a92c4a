"""Generate text from a checkpoint: python scripts/generate.py ckpt_path=<run folder> prompt="Once"
(see conf/generate.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.commands import run
from tinylm.commands.generate import generate


@hydra.main(config_path="../conf", config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> list[dict]:
    return run(generate, cfg)


if __name__ == "__main__":
    main()
