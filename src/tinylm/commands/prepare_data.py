"""`python scripts/prepare_data.py` (conf/prepare_data.yaml): download and tokenize a dataset
without training.

A cluster user runs it on a machine with internet; training on compute nodes without it then
finds the tokenized cache by its fingerprint, which is computed from the config alone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hydra.utils import instantiate
from omegaconf import DictConfig

if TYPE_CHECKING:  # the data modules import Lightning, which a refused command need not load
    from tinylm.data import TokenDataModule

log = logging.getLogger(__name__)


def prepare_data(cfg: DictConfig) -> TokenDataModule:
    datamodule: TokenDataModule = instantiate(cfg.data, _convert_="all")
    datamodule.setup()
    datamodule.prepare_ahead(cfg.epochs)
    log.info(f"Ready: {datamodule.describe()}")
    log.info(f"Tokenizer: {datamodule.tokenizer.describe()}")
    return datamodule
