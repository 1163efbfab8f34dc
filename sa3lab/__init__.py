"""sa3lab: notebook helpers and widget forms for running Stable Audio 3.

``sa3lab.start_here()``, ``generation_form()``, ``comparison_form()``, ``autoencoder_form()``,
``library_form()``, ``sweep_form()``, ``training_form()`` and ``radio_form()`` build the notebooks'
forms; ``sa3lab.Lab`` is the plain-Python run path they share. All are imported on first use, so
``import sa3lab`` loads neither torch nor ipywidgets.
"""

from .forms import __all__ as _FORMS  # the names only: sa3lab.forms imports its forms lazily too

_LAZY = {**dict.fromkeys(_FORMS, "sa3lab.forms"), "Lab": "sa3lab.lab"}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        try:
            module = import_module(_LAZY[name])
        except ImportError as exc:
            from .upstream_clash import clash_notice

            if notice := clash_notice():
                raise ImportError(notice) from exc
            raise
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
