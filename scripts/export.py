"""Export a checkpoint to 🤗 transformers: python scripts/export.py ckpt_path=<run folder>
output_dir=<folder> (see conf/export.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.commands import run
from tinylm.commands.export import export


@hydra.main(config_path="../conf", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> str:
    return run(export, cfg)


if __name__ == "__main__":
    main()
