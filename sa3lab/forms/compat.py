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


TAKEN = "taken"  # marks a file entry a form has already taken (its bytes are gone from the widget)


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of each file in a FileUpload ``value`` of either major version (files a form
    has already taken, see :func:`clear_upload`, are left out)."""
    if isinstance(value, dict):  # ipywidgets 7
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value or () if not item.get(TAKEN)]


def clear_upload(upload: widgets.FileUpload) -> None:
    """Drop the bytes of a FileUpload's files so they do not stay in the widget state (saved with a notebook).

    The button's count stays true to what was uploaded: ipywidgets 8 draws ``len(value)``, so each file
    stays in ``value`` with its name, type and size but empty content (and is marked taken); ipywidgets 7
    draws its own ``_counter`` of files uploaded, which is left as it is.
    """
    if MAJOR >= 8:
        upload.value = tuple({**item, "content": memoryview(b""), TAKEN: True} for item in upload.value)
        return
    with upload.hold_trait_notifications():
        upload.data, upload.metadata = [], []
        upload.set_trait("value", {})
