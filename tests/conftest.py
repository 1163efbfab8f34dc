import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(2)  # the fixtures were recorded with 2 threads

pytest_plugins = ["hub_fixtures", "browser_fixtures", "colab_env", "kernel_front_end"]
