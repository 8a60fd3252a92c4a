"""The playground in the browser: python scripts/serve.py ckpt_path=<run folder>, then open the
URL it prints (see conf/serve.yaml)."""

import hydra
from omegaconf import DictConfig

from tinylm.commands import run
from tinylm.commands.serve import serve


@hydra.main(config_path="../conf", config_name="serve", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(serve, cfg)


if __name__ == "__main__":
    main()
