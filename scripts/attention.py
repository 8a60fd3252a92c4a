"""Draw what a trained model attends to: python scripts/attention.py ckpt_path=<run folder>
prompt="ROMEO: But soft" (see conf/attention.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.commands import run
from tinylm.commands.attention import AttentionMap, attention


@hydra.main(config_path="../conf", config_name="attention", version_base="1.3")
def main(cfg: DictConfig) -> AttentionMap:
    return run(attention, cfg)


if __name__ == "__main__":
    main()
