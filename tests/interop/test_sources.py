"""Which ckpt_path / init_from values name a 🤗 transformers model, and that only those load
tinylm's transformers code."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tinylm.interop.sources import names_transformers_model


def test_folders_with_a_config_and_hub_ids_name_transformers_models(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "file.ckpt").write_bytes(b"")
    assert names_transformers_model(tmp_path / "hf")
    assert names_transformers_model("openai-community/gpt2") and names_transformers_model("gpt2")
    assert not names_transformers_model(tmp_path / "run")  # a run folder
    assert not names_transformers_model(tmp_path / "file.ckpt")
    assert not names_transformers_model("missing/last.ckpt")  # a checkpoint that is not there
    assert not names_transformers_model("outputs/train/runs/2024-01-01_10-00-00")  # not a hub id
    assert not names_transformers_model(None)


@pytest.mark.slow
def test_the_scripts_load_tinylms_transformers_code_only_when_a_transformers_model_is_used():
    # (torchmetrics, which Lightning imports, itself imports transformers when it is installed.)
    code = (
        "import sys, tinylm.commands.train, tinylm.commands.generate, tinylm.commands.eval, "
        "tinylm.commands.export; print(sorted(m for m in sys.modules if 'interop' in m))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=300, check=True)  # fmt: skip
    assert result.stdout.strip() == "['tinylm.interop', 'tinylm.interop.sources']"
