"""pytest plugin that makes torchaudio look uninstalled: its import fails, ``find_spec`` finds nothing.

``python -m pytest -p without_torchaudio ...`` (with tests/ on sys.path) runs any tests that way.
"""

import sys

for _name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
    del sys.modules[_name]
sys.modules["torchaudio"] = None  # the import system's own "no such module" marker
