"""Compare runs offline: python scripts/compare.py <run or sweep folders> [--output val_loss.png]"""

from tinylm.experiments.compare import main
from tinylm.utils.cli import exits_cleanly_on_user_error

if __name__ == "__main__":
    exits_cleanly_on_user_error(main)()
