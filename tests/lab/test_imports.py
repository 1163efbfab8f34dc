"""What importing the plain-Python lab loads: the jobs run headless, without a widget or plotting stack."""

import subprocess
import sys

import pytest

UI_PACKAGES = ("matplotlib", "ipywidgets", "IPython")


@pytest.mark.parametrize("module", ["sa3lab.lab", "sa3lab.library"])
def test_importing_the_lab_loads_neither_matplotlib_nor_widgets(module):
    """matplotlib is imported at the first drawing; the widgets only with a form (a fresh process each)."""
    code = (
        f"import sys, {module}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({UI_PACKAGES!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", f"import {module} loaded {done.stdout.strip()}"
