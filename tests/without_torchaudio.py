"""pytest plugin that makes ``import torchaudio`` fail, as on a runtime without it (or with a broken one).

``python -m pytest -p without_torchaudio ...`` (with tests/ on sys.path) runs any tests that way.
"""

import sys
from importlib.abc import MetaPathFinder


class _NoTorchaudio(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torchaudio" or name.startswith("torchaudio."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked for this test run)", name=name)
        return None


for _name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
    del sys.modules[_name]
sys.meta_path.insert(0, _NoTorchaudio())
