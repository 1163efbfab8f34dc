"""Is this machine ready? Plain-word facts, what will and will not work, and per-model access.

Plain Python (no widgets): the start-here form renders these; a script can print them.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field

from stable_audio_3.hub import endpoint, is_cached, is_offline

from . import catalog, device
from .auth import TOKEN_SOURCES, Access, AccessChecker, TokenChoice
from .runs import package_versions
from .upstream_clash import clash_notice

# Where a hosted notebook switches to a GPU runtime, by the runtime's name
GPU_SWITCH = {
    "Colab": "Runtime > Change runtime type > T4 GPU (then Save; the runtime restarts)",
    "Kaggle": "Settings > Accelerator > GPU T4 x2 or GPU P100 in the notebook editor's side panel "
    "(the session restarts; phone verification is needed once)",
}


@dataclass
class SetupReport:
    facts: list[tuple[str, str]]  # (what, plain value)
    works: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    switch: str = ""  # on a hosted runtime without a GPU: how to get one, and what works meanwhile


def hosted_runtime() -> str | None:
    """``"Colab"`` or ``"Kaggle"`` when the kernel runs there (from their environment variables, or an
    importable google.colab), else None."""
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ or "KAGGLE_URL_BASE" in os.environ:
        return "Kaggle"
    if "COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ:
        return "Colab"
    try:
        return "Colab" if importlib.util.find_spec("google.colab") is not None else None
    except (ImportError, ValueError):  # a "google" package without colab
        return None


def gpu_switch(runtime: str | None) -> str:
    """One sentence for a hosted runtime with no GPU: the menu path to one and what runs meanwhile."""
    if runtime not in GPU_SWITCH:
        return ""
    return (
        f"This {runtime} runtime has no GPU: choose {GPU_SWITCH[runtime]}, then run the notebooks again; "
        "meanwhile the demo model, the small models and SAME-S run on the CPU, slowly, "
        "while medium, SAME-L and LoRA training need the GPU."
    )


def _device_fact(machine: device.Machine) -> str:
    if machine.cuda:
        major, minor = machine.cuda_capability or (0, 0)
        gib = machine.cuda_total_gib
        return f"NVIDIA GPU {machine.cuda_name}, {gib:.1f} GiB (compute capability {major}.{minor})"
    if machine.mps:
        return "Apple GPU (MPS)"
    return "CPU only: no CUDA or Apple GPU was found"


def _need_gib(entry: catalog.Entry, policy: device.Policy) -> float:
    """Rough memory a model needs on the chosen device (the catalog figure is for float32)."""
    return entry.memory_gib / 2 if policy.dit_dtype.itemsize == 2 else entry.memory_gib


def setup_report(
    machine: device.Machine,
    model: str,
    token: TokenChoice,
    free: dict[str, float] | None = None,
    versions: dict[str, str] | None = None,
) -> SetupReport:
    """Facts about this machine and, in plain words, what will and will not work on it."""
    free = device.free_memory_gib() if free is None else free
    versions = package_versions() if versions is None else versions
    entry = catalog.ENTRIES.get(model)
    policy = device.choose(machine, gpu_first=bool(entry and entry.gpu_first))
    offline = is_offline()
    facts = [("Device", _device_fact(machine))]
    runtime = hosted_runtime()
    if runtime:
        facts.append(("Runtime", f"{runtime} (hosted notebook)"))
    if "gpu_free_gib" in free:
        facts.append(("GPU memory free", f"{free['gpu_free_gib']:.1f} of {machine.cuda_total_gib:.1f} GiB"))
    facts += [
        ("RAM free", f"{free['cpu_free_gib']:.1f} GiB"),
        ("Precision", policy.reason),
        ("Versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("Login", f"logged in through {TOKEN_SOURCES[token.source]}" if token.token else "not logged in"),
        (
            "Network",
            "offline (HF_HUB_OFFLINE is set)"
            if offline
            else f"online, Hub at {endpoint() or 'https://huggingface.co'}",
        ),
    ]
    report = SetupReport(facts)
    if clash := clash_notice():  # upstream's stable-audio-3 installed beside sa3lab
        report.limits.append(clash)
    report.works.append("The demo model runs offline, with no account and no download (its output is noise).")
    if offline:
        report.limits.append(
            "Offline: only models already in the Hugging Face cache, local folders and the demo model work; "
            "unset HF_HUB_OFFLINE to download."
        )
    else:
        report.works.append("Base checkpoints and the SAME autoencoders download without an account.")
    if token.token:
        report.works.append(
            "Post-trained models (small-music, small-sfx, medium) use your token; the table below shows "
            "whether its account has accepted each model's terms."
        )
    else:
        report.limits.append(
            "Post-trained models (small-music, small-sfx, medium) are gated: log in below and accept "
            "their terms on each model page first."
        )
    if policy.device == "cpu":
        report.switch = gpu_switch(runtime)
        report.works.append("Small models and SAME-S run on this CPU in float32 (slower than on a GPU).")
        report.limits.append(
            "medium, medium-base and SAME-L are designed for a GPU: on this CPU they take minutes per clip."
        )
    else:
        report.works.append(f"Models run on the GPU ({policy.reason}).")
    report.limits += policy.warnings
    if entry is not None and entry.memory_gib:
        available = free.get("gpu_free_gib", free["cpu_free_gib"])
        where = "GPU memory" if "gpu_free_gib" in free else "RAM"
        need = _need_gib(entry, policy)
        if available < need:
            report.limits.append(
                f"{entry.key} needs about {need:g} GiB of {where} but {available:.1f} GiB is free: choose a "
                "smaller model, close other notebooks or restart the kernel."
            )
        else:
            report.works.append(
                f"{entry.key} fits: it needs about {need:g} GiB of {where} and {available:.1f} GiB is free."
            )
    return report


@dataclass
class CoverageRow:
    key: str
    repo_id: str
    page: str
    collection: str
    gated: bool
    status: str  # plain label: "ok", "needs login (401)", ...
    detail: str  # one actionable sentence, or ""
    size: str
    device_advice: str  # "GPU recommended", "CPU or GPU" or "-"
    runnable: bool
    why: str  # why it cannot run here (the real cause), or ""
    token_rejected: bool = False  # the Hub refused the token; an open model still works without it


STATUS_LABELS = {
    Access.OK: "ok",
    Access.NEEDS_LOGIN: "needs login (401)",
    Access.NEEDS_TERMS: "needs terms accepted (403)",
    Access.TOKEN_REJECTED: "token rejected (401)",
    Access.NOT_FOUND: "not found",
    Access.SERVER_ERROR: "Hub error",
}
CAUSES = {  # why a model cannot run here yet, per access status
    Access.NEEDS_LOGIN: "needs a login",
    Access.NEEDS_TERMS: "its terms are not accepted yet",
    Access.TOKEN_REJECTED: "the Hub rejected your token",
    Access.NOT_FOUND: "not found on the Hub",
    Access.SERVER_ERROR: "the Hub answered with an error; check again in a minute",
}
UNREACHABLE = "Hub unreachable: "


@dataclass(frozen=True)
class _Status:
    label: str
    detail: str
    usable: bool
    cause: str = ""  # why it is not usable
    token_rejected: bool = False


def _size(entry: catalog.Entry) -> str:
    if not entry.params:
        return "tiny (built locally)" if entry.key == "demo" else "-"
    text = f"{entry.params / 1e9:.2f} B params"
    if entry.kind == "generation":
        text += f" + {catalog.T5GEMMA_ENCODER_PARAMS / 1e9:.2f} B text encoder"
    text += f"; ~{entry.memory_gib:g} GiB in float32"
    return text


def _status(entry: catalog.Entry, checker: AccessChecker, token: str | None, hub_down: bool) -> _Status:
    """What the Hub and the cache say about one runnable entry with a repo."""
    cached = is_cached(entry.repo_id)
    if not hub_down:
        try:
            access = checker.check(entry.repo_id, token, cached_locally=cached)
        except Exception:  # noqa: BLE001 - a transport error (refused, DNS, timeout): the Hub is unreachable
            access = None
        if access is not None and access.status is not Access.OFFLINE:
            label = STATUS_LABELS[access.status]
            if access.ok and access.token_rejected:
                label = "ok without your token (the Hub rejected it)"
            return _Status(
                label, access.message, access.ok, CAUSES.get(access.status, ""), access.token_rejected
            )
        if access is not None and is_offline():
            if cached:
                return _Status("offline: using cached copy", access.message, True)
            return _Status("offline: not cached", access.message, False, "offline and not in the local cache")
    if cached:
        return _Status(UNREACHABLE + "using cached copy", "", True)
    return _Status(
        UNREACHABLE + "not cached",
        f"The Hub cannot be reached and {entry.repo_id} is not in the local cache; check the network "
        "and refresh.",
        False,
        "the Hub cannot be reached and it is not in the local cache",
    )


def coverage(checker: AccessChecker, token: str | None) -> list[CoverageRow]:
    """Every catalog entry with whether ``token`` can download it and whether it can run here.

    Entries the engine cannot load are not asked about (nothing to download). After the first
    connection failure the other repos are not asked either (no waiting for each timeout).
    """
    rows, hub_down = [], False
    for entry in catalog.ENTRIES.values():
        if not entry.runnable:
            status = _Status("not loadable by this engine", "", False, entry.not_runnable_reason)
        elif entry.repo_id is None:
            status = _Status("built locally", "", True)
        else:
            status = _status(entry, checker, token, hub_down)
            hub_down = hub_down or status.label.startswith(UNREACHABLE)
        rows.append(
            CoverageRow(
                entry.key,
                entry.repo_id or "-",
                entry.page,
                entry.collection,
                entry.gated,
                status.label,
                status.detail,
                _size(entry),
                ("GPU recommended" if entry.gpu_first else "CPU or GPU") if entry.runnable else "-",
                status.usable,
                "" if status.usable else status.cause,
                status.token_rejected,
            )
        )
    return rows


def token_notice(rows: list[CoverageRow]) -> str:
    """The one sentence to show above the table when the Hub rejected the token, else ""."""
    notices = [r.detail for r in rows if r.token_rejected and r.runnable]  # open models still work
    return notices[0] if notices else next((r.detail for r in rows if r.token_rejected), "")


@dataclass(frozen=True)
class Readiness:
    """Whether a model can load here now, and if not: one sentence and the models that can instead."""

    ok: bool
    message: str = ""
    alternatives: tuple[str, ...] = ()  # catalog keys: an open base checkpoint that can load, the demo


RESTART_AFTER_OFFLINE = (
    "HF_HUB_OFFLINE is read when Jupyter starts: after changing it, restart Jupyter (not just the kernel)."
)


def _usable_here(entry: catalog.Entry) -> bool:
    """An open entry downloads online; offline it must be cached."""
    return entry.runnable and not entry.gated and (not is_offline() or is_cached(entry.repo_id))


def _alternatives(entry: catalog.Entry) -> tuple[str, ...]:
    bases = [e for e in catalog.in_collection("base") if e.sibling == entry.key and _usable_here(e)]
    return (*(e.key for e in bases[:1]), "demo")


def readiness(model: str, checker: AccessChecker, token: str | None) -> Readiness:
    """Can ``model`` (a catalog key or a folder) load here? Decided from the cache and cached answers.

    Offline, only the cache counts; a gated model without a token needs a login (no Hub call); with
    a token the access checker answers (its answers are kept for minutes). Open models are ready
    online. A folder and the demo are always ready (the run checks the folder's files).
    """
    entry = catalog.ENTRIES.get(model)
    if entry is None or entry.repo_id is None:
        return Readiness(True)
    if not entry.runnable:
        return Readiness(
            False, f"{entry.key} cannot run here: {entry.not_runnable_reason}", _alternatives(entry)
        )
    cached = is_cached(entry.repo_id)
    if is_offline():
        if cached:
            return Readiness(True)
        return Readiness(
            False,
            f"Offline (HF_HUB_OFFLINE is set) and {entry.key} is not in the local cache, so it cannot load: "
            f"use a model that is cached or the demo, or go online to download it. {RESTART_AFTER_OFFLINE}",
            _alternatives(entry),
        )
    if not entry.gated:
        return Readiness(True)
    if not token:
        return Readiness(
            False,
            f"{entry.key} is gated: log in (the 00_start_here notebook, huggingface_hub.notebook_login() or "
            f"`hf auth login`) or paste a token, after accepting its terms at {entry.page}.",
            _alternatives(entry),
        )
    status = _status(entry, checker, token, hub_down=False)
    if status.usable:
        return Readiness(True, status.detail if status.token_rejected else "")
    return Readiness(
        False, status.detail or f"{entry.key} cannot load here: {status.cause}.", _alternatives(entry)
    )
