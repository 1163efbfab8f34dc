"""Helpers of the form tests: one shared lab (the demo models load once), a demo form, what a form shows."""

import datetime
import html
import json
import re
from types import SimpleNamespace

import ipywidgets as widgets
from parity import MODELS

from sa3lab import catalog, generation_form
from sa3lab.auth import TokenChoice
from sa3lab.cache import ModelCache
from sa3lab.lab import Lab

FAKE_TOKEN = "hf_FAKEtoken_never_shown_0123456789"
LORA = MODELS / "lora" / "lora_a.safetensors"
NO_TOKEN = TokenChoice(None, "none")
_LAB = {}


def shared_lab() -> Lab:
    """One lab for all form tests of a process, so the demo models load once."""
    if "lab" not in _LAB:
        _LAB["lab"] = Lab(cache=ModelCache(max_models=3))
    return _LAB["lab"]


def demo_form(session, out, **kw):
    form = generation_form(
        model="demo", prompt="rain on a tin roof", duration=1.0, seed=3, output_dir=out, session=session, **kw
    )
    form.steps.value = 2
    return form


def message_text(form) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", form.shell.message.value))


def saved_state() -> str:
    """Everything "Save Notebook Widget State" would write into the .ipynb."""
    return json.dumps(widgets.Widget.get_manager_state(drop_defaults=False), default=str)


def result_blocks(form) -> list[str]:
    """The HTML blocks of the form's results output, newest first."""
    return form.shell.results


def upload_item(name: str, data: bytes) -> dict:
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"name": name, "type": "", "size": len(data), "content": memoryview(data), "last_modified": now}


def loaded_demo():
    """The demo model the forms' shared lab runs (loaded once)."""
    model, _, _ = shared_lab().load_generator("demo", catalog.get("demo"), None)
    return model


def record_calls(monkeypatch, owner, name: str) -> list:
    """Wrap ``owner.name`` so each call's arguments are kept; the real method still runs."""
    calls, real = [], getattr(owner, name)

    def recording(*args, **kwargs):
        calls.append(SimpleNamespace(args=args, kwargs=kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return calls


def sidecar(result) -> dict:
    return json.loads(open(result.paths[0].replace(".wav", ".json")).read())
