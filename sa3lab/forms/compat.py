"""What differs between ipywidgets 7 (Colab's 7.7.1) and 8, in one place.

Tab/Accordion titles (``titles=`` exists only in 8; 7 has ``set_title``), FileUpload's value
(7: a read-only dict ``{name: {"metadata": {...}, "content": bytes}}``; 8: a tuple of dicts with
``name`` and ``content``) and echoes (8 sends every value a front end sets back to all front ends,
:class:`SecretField` turns that off). Forms use these helpers and core widgets only.
"""

from __future__ import annotations

import importlib.util

import ipywidgets as widgets
from traitlets import Unicode

MAJOR = int(widgets.__version__.split(".")[0])


class SecretField(widgets.Password):
    """A password field whose value the kernel never echoes to the connected front ends.

    ipywidgets 8 answers each value a front end sets with an ``echo_update`` message carrying it on
    IOPub; a pasted token must not travel so. (ipywidgets 7 sends no echoes.)
    """

    value = Unicode(help="String value").tag(sync=True, echo_update=False)


def colab_available() -> bool:
    """Whether google.colab can be imported (the notebook runs on Colab)."""
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no "google" package at all
        return False


def titled(container_class, children, titles) -> widgets.Widget:
    """A Tab or Accordion with ``titles``, on either major version."""
    container = container_class(children=list(children))
    for index, title in enumerate(titles):
        container.set_title(index, title)
    return container


def with_tooltip(widget: widgets.Widget, text: str) -> widgets.Widget:
    """``widget`` with ``text`` shown on hover (``tooltip`` in 8; ``description_tooltip`` in 7)."""
    setattr(widget, "tooltip" if MAJOR >= 8 else "description_tooltip", text)
    return widget


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of each file in a FileUpload ``value`` of either major version."""
    if isinstance(value, dict):  # ipywidgets 7
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value or ()]


def clear_upload(upload: widgets.FileUpload) -> None:
    """Empty a FileUpload so the file's bytes do not stay in the widget state (saved with a notebook)."""
    if MAJOR >= 8:
        upload.value = ()
        return
    with upload.hold_trait_notifications():
        upload.data, upload.metadata = [], []
        upload.set_trait("value", {})
