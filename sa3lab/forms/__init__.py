"""ipywidgets forms of the lab, one per notebook. Imported lazily: ``import sa3lab.forms`` stays light."""

_FORMS = {
    "start_here": ".start",
    "generation_form": ".generation",
    "comparison_form": ".comparison",
    "autoencoder_form": ".autoencoder",
    "library_form": ".library",
    "sweep_form": ".sweeps",
    "training_form": ".training",
    "radio_form": ".radio",
}

__all__ = list(_FORMS)


def __getattr__(name):
    if name in _FORMS:
        from importlib import import_module

        return getattr(import_module(_FORMS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
