import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
# The parity fixtures were recorded with 2 threads (they pass with 1 too). Under pytest-xdist (`make test`
# runs 2 workers on the 2 cores) each worker keeps to one thread: 2 x 2 threads would oversubscribe the
# cores, and spinning OpenMP threads then slow every test down many times over.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)

pytest_plugins = ["hub_fixtures", "browser_fixtures", "colab_env", "kaggle_env", "kernel_front_end"]
