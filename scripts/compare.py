"""Compare runs: python scripts/compare.py runs=<sweep or run folders> (see conf/compare.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.commands import run
from tinylm.commands.compare import compare


@hydra.main(config_path="../conf", config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> str:
    return run(compare, cfg)


if __name__ == "__main__":
    main()
