"""LoRA adapters in the upstream file format, stackable, with runtime strength and exact unloading.

A file holds tensors named ``<module path>.parametrizations.weight.0.<param>`` (DiT paths relative to
the DiT wrapper, starting with ``model.``; conditioner paths relative to the conditioner, starting
with ``conditioners.``) and a ``lora_config`` JSON header (rank, alpha, adapter_type, ...). Each
adapted weight gets one :class:`LoraAdapter` per loaded file through ``torch.nn.utils.parametrize``;
adapters chain in load order, so ``W -> f0(W) -> f1(f0(W))``. Removing them restores the original
tensor object, so the base weights come back bit-exactly.

Newer files (upstream's later LoRA package) may also hold, for row-normalised DoRA (``dora-rows``,
``dora-rows-xs``), each layer's ``baked_vnorm_row``: the row norms ``||W0 + (alpha / rank) * delta||``
of the direction at strength 1 against the base weights ``W0`` they were baked with. At strength 1 on
the unadapted base weight they replace that norm; at load they are checked against the model's own
weights, and ignored with a note when they disagree (another base model). ``-xs`` files were trained
against frozen SVD bases: ``svd_bases`` (upstream's ``svd_bases.pt``: ``{"model.<layer>.weight" or
"conditioner.<layer>.weight": {"U": (fan_out, k), "V": (fan_in, k), ...}}``, sliced to the rank)
gives them; without it the bases are recomputed from the model, with a note that the result may
differ. Notes are warned (:class:`LoraNote`) and kept per file (:attr:`LoadedLora.notes`).

Strengths never live on the modules while a model runs: a generation fixes the strength of every
loaded file at its start (a :class:`LoraRun`, from :meth:`LoraStack.run`) and puts it in a context
variable that the adapters read, so two generations in two threads may use different strengths on
the same model. :func:`switched_adapters` turns adapters off per network call the same way
(upstream's ``lora_interval`` and ``lora_layer_filter``, or per file with
upstream's ``lora_configs``). Outside any run, each file's default
strength (:meth:`LoraStack.set_strength`) applies. Loading and unloading change the module tree, so
they wait until no generation uses the model (:meth:`LoraStack.in_use`).
"""

from __future__ import annotations

import json
import re
import threading
import warnings
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from torch.nn.utils import parametrize

from . import checks

ADAPTER_TYPES = (
    "lora",
    "dora-rows",
    "dora-cols",
    "bora",
    "lora-xs",
    "dora-rows-xs",
    "dora-cols-xs",
    "bora-xs",
)
_PARAMS = ("lora_A", "lora_B", "M_xs", "magnitude", "magnitude_r", "magnitude_c")
BAKED_NORM = "baked_vnorm_row"  # row norms of the direction at strength 1, baked against the base weights
BAKED_TYPES = ("dora-rows", "dora-rows-xs")  # the row-normalised kinds, the only ones a row norm serves
BASES_PREFIXES = ("model.", "conditioner.", "")  # how svd_bases.pt keys name DiT, conditioner, other layers


class LoraNote(UserWarning):
    """Something about a loaded LoRA file that may make its result differ from upstream's."""


_KEY = re.compile(r"^(?P<module>.+)\.parametrizations\.weight\.\d+\.(?P<param>[A-Za-z_]+)$")


@dataclass
class LoraFile:
    """The parsed content of one LoRA file."""

    path: Path
    rank: int
    alpha: float
    adapter_type: str
    layers: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # module path -> params
    config: dict = field(default_factory=dict)  # the file's lora_config header as written
    metadata: dict = field(default_factory=dict)  # the file's other header entries (safetensors)

    @property
    def baked(self) -> bool:
        """Whether the file carries baked row norms that this kind of adapter uses."""
        return self.adapter_type in BAKED_TYPES and any(BAKED_NORM in p for p in self.layers.values())


def _bad_file(path, why: str) -> ValueError:
    return ValueError(f"{path} is not a usable LoRA file: {why}.")


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    if not path.is_file():
        raise ValueError(f"LoRA file {path} does not exist; check the path.")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001 - safetensors error types vary across versions
            raise _bad_file(path, f"it cannot be read as safetensors ({type(exc).__name__})") from None
        if "lora_config" not in meta:
            raise _bad_file(path, "its header has no 'lora_config' entry")
        try:
            config = json.loads(meta["lora_config"])
        except json.JSONDecodeError:
            raise _bad_file(path, "its 'lora_config' header is not valid JSON") from None
        return tensors, config, {k: v for k, v in meta.items() if k != "lora_config"}
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise _bad_file(path, f"it cannot be read as a checkpoint ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise _bad_file(path, "it has no 'state_dict'")
    return blob["state_dict"], blob.get("lora_config") or {}, {}


def _resolve_type(adapter_type: str, layers: dict) -> str:
    if adapter_type != "dora":
        return adapter_type
    # legacy "dora": a 2-D magnitude's shape tells rows from columns, (1, fan_in) being columns; a 1-D
    # one (upstream's legacy files hold these for dora-cols too) by its length on a non-square layer
    for params in layers.values():
        mag = params.get("magnitude")
        if mag is None:
            continue
        if mag.dim() == 2:
            return "dora-cols" if mag.shape[0] == 1 and mag.shape[1] != 1 else "dora-rows"
        a, b = params.get("lora_A"), params.get("lora_B")
        if mag.dim() != 1 or a is None or b is None:
            continue
        fan_in, fan_out = a[0].numel(), b.shape[0]
        if fan_in != fan_out and mag.numel() in (fan_in, fan_out):
            return "dora-cols" if mag.numel() == fan_in else "dora-rows"
    return "dora-rows"


def read_lora_file(path) -> LoraFile:
    """Parse and check one LoRA file (safetensors, or a legacy ``.ckpt`` with ``state_dict``)."""
    path = Path(path)
    tensors, config, metadata = _read_tensors(path)
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        m = _KEY.match(key)
        if not m or m["param"] not in (*_PARAMS, BAKED_NORM):
            continue  # U/V bases and unrelated entries are rebuilt or ignored
        layers.setdefault(m["module"], {})[m["param"]] = tensor.float()
    if not layers:
        raise _bad_file(path, "it holds no LoRA weights (no '*.parametrizations.weight.N.lora_A' keys)")
    adapter_type = _resolve_type(str(config.get("adapter_type", "lora")), layers)
    if adapter_type not in ADAPTER_TYPES:
        raise _bad_file(path, f"adapter_type {adapter_type!r} is not one of {', '.join(ADAPTER_TYPES)}")
    xs = adapter_type.endswith("-xs")
    first = next(iter(layers.values()))
    inferred = (
        first["M_xs"].shape[0] if xs and "M_xs" in first else first.get("lora_A", torch.zeros(1, 1)).shape[0]
    )
    rank = int(config.get("rank") or inferred)
    alpha = float(config.get("alpha") or rank)
    for module, params in layers.items():
        needed = ("M_xs",) if xs else ("lora_A", "lora_B")
        if any(p not in params for p in needed):
            raise _bad_file(path, f"layer {module} lacks {' and '.join(needed)}")
        if adapter_type not in BAKED_TYPES:  # a row norm means nothing to column-normalised kinds
            params.pop(BAKED_NORM, None)
        baked, magnitude = params.get(BAKED_NORM), params.get("magnitude")
        if baked is not None and (
            magnitude is None or baked.numel() != magnitude.numel() or not torch.isfinite(baked).all()
        ):
            raise _bad_file(path, f"the baked row norms of layer {module} do not match its magnitudes")
        if baked is not None:
            params[BAKED_NORM] = baked.reshape(-1)
    return LoraFile(path, rank, alpha, adapter_type, layers, config, metadata)


def _svd_bases(weight2d: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``rank`` singular vectors with a fixed sign: each U column's largest entry is positive."""
    u, _, vh = torch.linalg.svd(weight2d.detach().to("cpu", torch.float32), full_matrices=False)
    u, v = u[:, :rank], vh[:rank].T
    pick = u.abs().argmax(dim=0)
    signs = torch.sign(u[pick, torch.arange(u.shape[1])])
    signs[signs == 0] = 1
    return u * signs, v * signs


def read_svd_bases(path) -> dict:
    """Upstream's frozen ``svd_bases.pt``: ``{key: {"U": tensor, "V": tensor, ...}}`` (memory-mapped)."""
    path = Path(checks.path_like("The SVD bases file", path)).expanduser()
    if not path.is_file():
        raise ValueError(f"SVD bases file {path} does not exist; check the path.")
    try:
        bases = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        why = f"it cannot be read as a torch file ({type(exc).__name__})"
        raise ValueError(f"{path} is not a usable SVD bases file: {why}.") from None
    if not isinstance(bases, dict) or not all(
        isinstance(v, dict) and torch.is_tensor(v.get("U")) and torch.is_tensor(v.get("V"))
        for v in bases.values()
    ):
        why = "it must map layer weight names to {'U': ..., 'V': ...}"
        raise ValueError(f"{path} is not a usable SVD bases file: {why}.")
    return bases


def header_adapter_type(path) -> str | None:
    """A safetensors LoRA file's ``adapter_type`` from its header alone (None when it cannot be told)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            config = json.loads((f.metadata() or {}).get("lora_config", "{}"))
    except Exception:  # noqa: BLE001 - any unreadable header means the same: not known
        return None
    kind = config.get("adapter_type") if isinstance(config, dict) else None
    return kind if isinstance(kind, str) else None


def companion_bases(lora_path) -> Path:
    """Where this lab's training writes the frozen SVD bases of an ``-xs`` file: ``<name>.svd_bases.pt``."""
    lora_path = Path(lora_path)
    return lora_path.with_name(f"{lora_path.stem}.svd_bases.pt")


def layer_bases(bases: dict, source, layer: str, weight: torch.Tensor, rank: int):
    """The frozen (U, V) of one layer, sliced to ``rank`` (float32), or why they do not fit."""
    key = next((f"{p}{layer}.weight" for p in BASES_PREFIXES if f"{p}{layer}.weight" in bases), None)
    if key is None:
        raise ValueError(
            f"SVD bases file {Path(source).name} has no bases for layer '{layer}'; "
            "it was made for another model."
        )
    u, v = bases[key]["U"], bases[key]["V"]
    out_dim, in_dim = weight.shape[0], weight[0].numel()
    if (
        u.dim() != 2
        or v.dim() != 2
        or u.shape[0] != out_dim
        or v.shape[0] != in_dim
        or min(u.shape[1], v.shape[1]) < rank
    ):
        raise ValueError(
            f"SVD bases file {Path(source).name} does not fit layer '{layer}' (weight {tuple(weight.shape)}, "
            f"bases U {tuple(u.shape)} and V {tuple(v.shape)}, rank {rank}); it was made for another model."
        )
    return u[:, :rank].float().contiguous(), v[:, :rank].float().contiguous()


@dataclass(eq=False)
class LoadedLora:
    """One loaded file: its content, the strength used by runs that do not set their own, and notes on
    what may make its result differ from upstream's (ignored baked norms, recomputed -xs bases)."""

    file: LoraFile
    strength: float = 1.0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoraRun:
    """The LoRA strengths of one run, fixed at its start, and the adapters switched off for one call.

    ``strengths`` maps each loaded file to its strength (a file loaded after the run started is
    absent: off); None means each file's default strength.
    """

    strengths: Mapping[LoadedLora, float] | None = None
    off: frozenset = frozenset()

    def strength_of(self, adapter: LoraAdapter) -> float:
        if adapter in self.off:
            return 0.0
        if adapter.owner is None:  # an adapter being trained: fully on
            return 1.0
        if self.strengths is None:
            return adapter.owner.strength
        return self.strengths.get(adapter.owner, 0.0)


_CURRENT_RUN: ContextVar[LoraRun | None] = ContextVar("stable_audio_3_lora_run", default=None)


@contextmanager
def running(run: LoraRun) -> Iterator[None]:
    """Make ``run`` the LoRA settings of everything this thread (context) computes inside the block."""
    token = _CURRENT_RUN.set(run)
    try:
        yield
    finally:
        _CURRENT_RUN.reset(token)


class LoraAdapter(nn.Module):
    """One file's adapter on one weight: ``forward(W)`` returns the adapted weight.

    The strength comes from the current :class:`LoraRun` (or, outside a run, ``owner.strength``);
    at strength 0 the weight is returned unchanged. An adapter with no owner (one being trained, not
    loaded from a file) has strength 1 unless a run switches it off.
    """

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        adapter_type: str,
        scaling: float,
        base: torch.Tensor,
        owner: LoadedLora | None = None,
        file_index: int = 0,
        bases: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        super().__init__()
        self.adapter_type = adapter_type
        self.scaling = scaling
        self.owner = owner
        self.file_index = file_index  # the file's load order: what ``lora_configs`` entries name
        self._base = weakref.ref(base)  # the unadapted weight, the only input baked norms hold for
        device = base.device
        params = dict(params)
        baked = params.pop(BAKED_NORM, None)
        for name, value in params.items():
            setattr(self, name, nn.Parameter(value.to(device), requires_grad=False))
        self.register_buffer(BAKED_NORM, None if baked is None else baked.float().to(device))
        if adapter_type.endswith("-xs"):
            if bases is None:
                bases = _svd_bases(base.reshape(base.shape[0], -1), params["M_xs"].shape[0])
            self.register_buffer("U", bases[0].to(device))
            self.register_buffer("V", bases[1].to(device))

    @property
    def strength(self) -> float:
        """The strength in effect here and now (this run's, or the file's default)."""
        run = _CURRENT_RUN.get()
        if run is None:
            return 1.0 if self.owner is None else self.owner.strength
        return run.strength_of(self)

    def _delta(self) -> torch.Tensor:
        if self.adapter_type.endswith("-xs"):
            return self.U @ self.M_xs @ self.V.T
        return self.lora_B @ self.lora_A

    def baked_norm_gap(self, base: torch.Tensor) -> float:
        """The largest relative difference between the baked row norms and those of ``base``."""
        v = base.detach().reshape(base.shape[0], -1).float() + self.scaling * self._delta()
        norms = v.norm(dim=1)
        floor = 1e-6 * float(norms.max()) + 1e-12
        return float(((self.baked_vnorm_row - norms).abs() / norms.clamp_min(floor)).max())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        strength = self.strength
        if strength == 0:
            return weight
        flat = weight.reshape(weight.shape[0], -1)
        scaled = self.scaling * strength * self._delta()
        kind = self.adapter_type.removesuffix("-xs")
        if kind == "lora":
            return (flat + scaled.to(flat.dtype)).reshape(weight.shape)
        v = flat.float() + scaled
        if (
            kind == "dora-rows"
            and self.baked_vnorm_row is not None
            and strength == 1
            and weight is self._base()
        ):
            v = v / (self.baked_vnorm_row.reshape(-1, 1) + 1e-12) * self.magnitude.reshape(-1, 1)
        elif kind in ("dora-rows", "bora"):
            mag = self.magnitude if kind == "dora-rows" else self.magnitude_r
            v = v / (v.norm(dim=1, keepdim=True) + 1e-12) * mag.reshape(-1, 1)
        if kind in ("dora-cols", "bora"):
            mag = self.magnitude if kind == "dora-cols" else self.magnitude_c
            v = v / (v.norm(dim=0, keepdim=True) + 1e-12) * mag.reshape(1, -1)
        return v.to(weight.dtype).reshape(weight.shape)


def base_weight(module: nn.Module) -> torch.Tensor:
    """A layer's own weight tensor, under any adapters attached to it."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def _find_layer(roots: list[nn.Module], path: str) -> nn.Module | None:
    for root in roots:
        try:
            return root.get_submodule(path)
        except AttributeError:
            continue
    return None


def _check_fits(lora: LoraFile, roots: list[nn.Module]) -> dict[str, nn.Module]:
    """Map every layer of the file to a module of the model, or explain why it does not fit."""
    targets = {}
    for path, params in lora.layers.items():
        module = _find_layer(roots, path)
        weight = getattr(module, "weight", None) if module is not None else None
        if weight is None:
            raise ValueError(
                f"LoRA file {lora.path.name} adapts layer '{path}', which this model does not have; "
                "it was made for another model."
            )
        out_dim, in_dim = weight.shape[0], weight[0].numel()
        if "lora_A" in params and (
            params["lora_A"].shape[1] != in_dim or params["lora_B"].shape[0] != out_dim
        ):
            raise ValueError(
                f"LoRA file {lora.path.name} does not fit layer '{path}' (weight {tuple(weight.shape)}, "
                f"adapter {tuple(params['lora_B'].shape[:1])}x{tuple(params['lora_A'].shape[1:])}); "
                "it was made for another model."
            )
        targets[path] = module
    return targets


def _per_path(svd_bases, count: int) -> list[str | None]:
    """``svd_bases`` as one entry (path or None) per LoRA file."""
    if svd_bases is None or isinstance(svd_bases, (str, Path)):
        return [None if svd_bases is None else checks.path_like("The SVD bases file", svd_bases)] * count
    if not isinstance(svd_bases, (list, tuple)) or len(svd_bases) != count:
        raise ValueError(
            f"svd_bases must be one path for every -xs file or a list of {count} entries (path or None), "
            f"one per LoRA file; got {svd_bases!r}."
        )
    return [None if b is None else checks.path_like("The SVD bases file", b) for b in svd_bases]


def _baked_eps(lora: LoraFile) -> float:
    """The rounding of the base weights the norms were baked against (the file's ``norm_dtype``;
    upstream's files, which do not say, hold float32 norms of float32 weights)."""
    dtype = getattr(torch, str(lora.metadata.get("norm_dtype", "float32")), None)
    return torch.finfo(dtype).eps if isinstance(dtype, torch.dtype) and dtype.is_floating_point else 0.0


def _norm_tolerance(lora: LoraFile, base: torch.Tensor) -> float:
    """How far baked norms may stray from this model's own by rounding alone."""
    eps = max(_baked_eps(lora), torch.finfo(base.dtype).eps if base.dtype.is_floating_point else 0.0)
    return max(1e-3, 2 * eps)


def _build(lora: LoraFile, targets: dict[str, nn.Module], bases_path, bases) -> tuple[LoadedLora, dict]:
    """The owner and the adapters of one file, not yet attached; its baked norms checked against the
    model's weights (ignored, with a note, where they disagree)."""
    xs = lora.adapter_type.endswith("-xs")
    owner = LoadedLora(lora)
    notes, adapters, gaps = [], {}, []
    for path, module in targets.items():
        base = base_weight(module)
        params = lora.layers[path]
        frozen = layer_bases(bases, bases_path, path, base, params["M_xs"].shape[0]) if xs and bases else None
        adapters[path] = LoraAdapter(
            params, lora.adapter_type, lora.alpha / lora.rank, base, owner, bases=frozen
        )
        if adapters[path].baked_vnorm_row is not None:
            gaps.append((adapters[path].baked_norm_gap(base), _norm_tolerance(lora, base), path))
    off = [(gap, path) for gap, tolerance, path in gaps if gap > tolerance]
    coarser = gaps and _baked_eps(lora) > torch.finfo(base_weight(next(iter(targets.values()))).dtype).eps
    if off or coarser:  # baked against other (or coarser, e.g. bfloat16) weights: this model's norms serve
        for adapter in adapters.values():
            adapter.baked_vnorm_row = None
    if off:
        gap, path = max(off)
        cause = "another base model"
        if xs and not bases:
            cause += ", or other SVD bases than the ones recomputed here"
        notes.append(
            f"The LoRA file {lora.path.name} carries baked row norms made for {cause} (off by {gap:.2%} on "
            f"layer '{path}'), so they were ignored and this model's own norms used; its result may differ "
            "from upstream's."
        )
    if xs and not bases:
        notes.append(
            f"The LoRA file {lora.path.name} is a {lora.adapter_type} adapter loaded without the frozen SVD "
            "bases file (svd_bases.pt) it was trained against, so its bases were recomputed from this model "
            "and its result may differ from upstream's; give that file to load it exactly."
        )
    owner.notes = tuple(notes)
    return owner, adapters


class _StructureLock:
    """Many generations at once, or one change of the module tree alone.

    A change waits until running generations finish, and generations starting meanwhile wait for
    the change. A thread inside a generation cannot change the tree (that would wait forever).
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._users = 0
        self._changing = False
        self._waiting = 0
        self._depth = threading.local()

    @contextmanager
    def use(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        with self._cond:
            while depth == 0 and (self._changing or self._waiting):
                self._cond.wait()
            self._users += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextmanager
    def change(self) -> Iterator[None]:
        if getattr(self._depth, "n", 0):
            raise RuntimeError(
                "LoRA files cannot be loaded or unloaded from inside a generation on the same model "
                "(e.g. from its callback); do it before or after the generation."
            )
        with self._cond:
            self._waiting += 1
            try:
                while self._changing or self._users:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._changing = True
        try:
            yield
        finally:
            with self._cond:
                self._changing = False
                self._cond.notify_all()


class LoraStack:
    """The LoRA files loaded onto a model, in load order."""

    def __init__(self, roots: list[nn.Module]):
        self.roots = roots
        self.loaded: list[LoadedLora] = []
        self._modules: list[nn.Module] = []
        self._lock = _StructureLock()

    @property
    def files(self) -> list[LoraFile]:
        return [entry.file for entry in self.loaded]

    @property
    def names(self) -> list[str]:
        return [entry.file.path.stem for entry in self.loaded]

    @property
    def notes(self) -> list[tuple[str, ...]]:
        """Each loaded file's notes (ignored baked norms, recomputed -xs bases), in load order."""
        return [entry.notes for entry in self.loaded]

    def in_use(self):
        """Context manager held by a generation: loading and unloading wait until it ends."""
        return self._lock.use()

    def load(self, paths, svd_bases=None) -> list[str]:
        """Add the files (checked first, so a bad file leaves the model as it was); returns the notes.

        ``svd_bases``: the frozen ``svd_bases.pt`` the ``-xs`` files were trained against, one path for
        all of them or a list with one entry (path or None) per file. Waits until no generation uses
        the model.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        if not isinstance(paths, (list, tuple)):
            raise ValueError(f"Give a LoRA file path or a list of paths, got {type(paths).__name__}.")
        paths = [checks.path_like("A LoRA file", p) for p in paths]
        bases_paths = _per_path(svd_bases, len(paths))
        parsed = [read_lora_file(p) for p in paths]
        plans = [_check_fits(lora, self.roots) for lora in parsed]
        used = [
            b for b, lora in zip(bases_paths, parsed, strict=True) if b and lora.adapter_type.endswith("-xs")
        ]
        opened = {b: read_svd_bases(b) for b in dict.fromkeys(used)}
        built = [
            _build(lora, targets, bases, opened.get(bases))
            for lora, targets, bases in zip(parsed, plans, bases_paths, strict=True)
        ]
        notes = [note for owner, _ in built for note in owner.notes]
        for note in notes:
            warnings.warn(note, LoraNote, stacklevel=3)
        with self._lock.change():
            for (owner, adapters), targets in zip(built, plans, strict=True):
                for path, module in targets.items():
                    adapters[path].file_index = len(self.loaded)
                    parametrize.register_parametrization(module, "weight", adapters[path], unsafe=True)
                    if module not in self._modules:
                        self._modules.append(module)
                self.loaded.append(owner)
        return notes

    def set_strength(self, strength, lora_index=None) -> None:
        """Set the default strength of one file (by load index) or of all; runs already going keep theirs."""
        strength = checks.number("LoRA strength", strength)
        for entry in self._select(lora_index):
            entry.strength = strength

    def _select(self, lora_index) -> list[LoadedLora]:
        if not self.loaded:
            raise ValueError("No LoRA file is loaded; call load_lora first.")
        if lora_index is None:
            return list(self.loaded)
        index = checks.whole("lora_index", lora_index)
        if not 0 <= index < len(self.loaded):
            raise ValueError(
                f"lora_index {index} is out of range: {len(self.loaded)} LoRA file(s) are loaded."
            )
        return [self.loaded[index]]

    def run(self, strengths=None) -> LoraRun:
        """The strengths a generation uses, fixed now.

        ``None``: each file's default strength; a number: every loaded file; a list: one per loaded
        file in load order; a dict ``{load index or file path: strength}``: those files (a path
        names every loaded copy of that file), the others off.
        """
        if strengths is None:
            return LoraRun({entry: entry.strength for entry in self.loaded})
        if isinstance(strengths, Mapping):
            chosen = {entry: 0.0 for entry in self.loaded}
            for key, value in strengths.items():
                value = checks.number("LoRA strength", value)
                for entry in self._by_key(key):
                    chosen[entry] = value
            return LoraRun(chosen)
        if isinstance(strengths, (list, tuple)):
            if len(strengths) != len(self.loaded):
                raise ValueError(
                    f"lora_strengths has {len(strengths)} entries but {len(self.loaded)} LoRA file(s) are "
                    "loaded; give one strength per loaded file, or a dict {index or path: strength}."
                )
            values = [checks.number("LoRA strength", v) for v in strengths]
            return LoraRun(dict(zip(self.loaded, values, strict=True)))
        value = checks.number("lora_strengths", strengths)
        if not self.loaded:
            raise ValueError("lora_strengths was given but no LoRA file is loaded; call load_lora first.")
        return LoraRun({entry: value for entry in self.loaded})

    def _by_key(self, key) -> list[LoadedLora]:
        if isinstance(key, (str, Path)):
            wanted = Path(key).expanduser().resolve()
            found = [e for e in self.loaded if e.file.path.expanduser().resolve() == wanted]
            if not found:
                raise ValueError(
                    f"lora_strengths names {key}, which is not loaded; call load_lora with it first."
                )
            return found
        return self._select(key)

    def describe(self, run: LoraRun) -> tuple[tuple[str, float], ...]:
        """(file path, strength) of every loaded file as ``run`` uses it."""
        return tuple((str(entry.file.path), run.strengths.get(entry, 0.0)) for entry in self.loaded)

    def unload(self) -> None:
        """Remove every adapter and put back the original weight tensors (waits for running generations)."""
        with self._lock.change():
            for module in self._modules:
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
            self.loaded, self._modules = [], []


def expand_ranges(pattern: str) -> list[str]:
    """``'layers.[0-2].'`` -> ``['layers.0.', 'layers.1.', 'layers.2.']``; ranges may run downwards."""
    found = re.search(r"\[(\d+)-(\d+)\]", pattern)
    if found is None:
        return [pattern]
    lo, hi = int(found[1]), int(found[2])
    step = 1 if hi >= lo else -1
    head, tails = pattern[: found.start()], expand_ranges(pattern[found.end() :])
    return [f"{head}{n}{tail}" for n in range(lo, hi + step, step) for tail in tails]


def layer_patterns(layer_filter: str) -> list[str]:
    """A comma-separated filter of name substrings (case-folded, ``[a-b]`` ranges expanded)."""
    parts = [part.strip().lower() for part in layer_filter.split(",") if part.strip()]
    return [pattern for part in parts for pattern in expand_ranges(part)]


def _per_file(lora_configs) -> dict[int, tuple[tuple[float, float], str]]:
    """Upstream's ``lora_configs`` (``[{"lora_index": i, "interval": (lo, hi), "layer_filter": "..."}]``)
    as ``{index: (interval, filter)}``, checked."""
    rule = (
        'lora_configs must be a list of dicts such as {"lora_index": 0, "interval": (0.0, 1.0), '
        '"layer_filter": ""}'
    )
    if not isinstance(lora_configs, (list, tuple)):
        raise ValueError(f"{rule}; got {type(lora_configs).__name__}.")
    settings = {}
    for config in lora_configs:
        entry = config if isinstance(config, dict) else {}
        index = entry.get("lora_index")
        interval = entry.get("interval", (0, 1))
        layer_filter = entry.get("layer_filter", "")
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or index < 0
            or not isinstance(interval, (list, tuple))
            or len(interval) != 2
            or not isinstance(layer_filter, str)
        ):
            raise ValueError(f"{rule}; got {config!r}.")
        settings[index] = ((float(interval[0]), float(interval[1])), layer_filter)
    return settings


@contextmanager
def switched_adapters(
    root: nn.Module, sigma0: torch.Tensor, interval, layer_filter: str, lora_configs=None
) -> Iterator[frozenset | None]:
    """Within the block, the adapters under ``root`` are on iff ``sigma0`` is in their interval, except
    on filtered layers (names relative to ``root``); the others keep the current run's strengths.

    ``interval`` and ``layer_filter`` apply to every file but those an entry of ``lora_configs``
    names by load index: those use the entry's own, as upstream's DiT does. Yields the load indices
    of the files whose interval holds ``sigma0`` (None when no adapters are attached).
    """
    adapters = [
        (name, adapter)
        for name, module in root.named_modules()
        for adapter in getattr(getattr(module, "parametrizations", None), "weight", None) or ()
        if isinstance(adapter, LoraAdapter)
    ]
    if not adapters:
        yield None
        return
    settings = {} if lora_configs is None else _per_file(lora_configs)
    loaded = sorted({adapter.file_index for _, adapter in adapters})
    unknown = sorted(set(settings) - set(loaded))
    if unknown:
        raise ValueError(
            f"lora_configs names LoRA index {unknown[0]}, but the loaded files have indices "
            f"{', '.join(map(str, loaded))} (load order, from 0)."
        )
    active, patterns = set(), {}
    for index in loaded:
        (low, high), file_filter = settings.get(index, (interval, layer_filter))
        if bool(low <= sigma0 <= high):
            active.add(index)
        patterns[index] = layer_patterns(file_filter)
    off = frozenset(
        adapter
        for name, adapter in adapters
        if adapter.file_index not in active or any(p in name for p in patterns[adapter.file_index])
    )
    run = _CURRENT_RUN.get() or LoraRun()
    with running(replace(run, off=run.off | off)):
        yield frozenset(active)
