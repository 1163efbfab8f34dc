"""LoRA adapters in the upstream file format, stackable, with runtime strength and exact unloading.

A file holds tensors named ``<module path>.parametrizations.weight.0.<param>`` (DiT paths relative to
the DiT wrapper, starting with ``model.``; conditioner paths relative to the conditioner, starting
with ``conditioners.``) and a ``lora_config`` JSON header (rank, alpha, adapter_type, ...). Each
adapted weight gets one :class:`LoraAdapter` per loaded file through ``torch.nn.utils.parametrize``;
adapters chain in load order, so ``W -> f0(W) -> f1(f0(W))``. Removing them restores the original
tensor object, so the base weights come back bit-exactly. :func:`switch_adapters` turns adapters on
and off per model call (upstream's ``lora_interval`` and ``lora_layer_filter``, or per file with
upstream's ``lora_configs``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from torch.nn.utils import parametrize

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
_KEY = re.compile(r"^(?P<module>.+)\.parametrizations\.weight\.\d+\.(?P<param>[A-Za-z_]+)$")


@dataclass
class LoraFile:
    """The parsed content of one LoRA file."""

    path: Path
    rank: int
    alpha: float
    adapter_type: str
    layers: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # module path -> params


def _bad_file(path, why: str) -> ValueError:
    return ValueError(f"{path} is not a usable LoRA file: {why}.")


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
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
        return tensors, config
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise _bad_file(path, f"it cannot be read as a checkpoint ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise _bad_file(path, "it has no 'state_dict'")
    return blob["state_dict"], blob.get("lora_config") or {}


def _resolve_type(adapter_type: str, layers: dict) -> str:
    if adapter_type != "dora":
        return adapter_type
    # legacy "dora": the shape of a stored magnitude tells rows from columns
    for params in layers.values():
        mag = params.get("magnitude")
        if mag is not None and mag.dim() == 2:
            return "dora-cols" if mag.shape[0] == 1 and mag.shape[1] != 1 else "dora-rows"
    return "dora-rows"


def read_lora_file(path) -> LoraFile:
    """Parse and check one LoRA file (safetensors, or a legacy ``.ckpt`` with ``state_dict``)."""
    path = Path(path)
    tensors, config = _read_tensors(path)
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        m = _KEY.match(key)
        if not m or m["param"] not in _PARAMS:
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
    return LoraFile(path, rank, alpha, adapter_type, layers)


def _svd_bases(weight2d: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``rank`` singular vectors with a fixed sign: each U column's largest entry is positive."""
    u, _, vh = torch.linalg.svd(weight2d.detach().to("cpu", torch.float32), full_matrices=False)
    u, v = u[:, :rank], vh[:rank].T
    pick = u.abs().argmax(dim=0)
    signs = torch.sign(u[pick, torch.arange(u.shape[1])])
    signs[signs == 0] = 1
    return u * signs, v * signs


class LoraAdapter(nn.Module):
    """One file's adapter on one weight: ``forward(W)`` returns the adapted weight."""

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        adapter_type: str,
        scaling: float,
        base: torch.Tensor,
        file_index: int = 0,
    ):
        super().__init__()
        self.adapter_type = adapter_type
        self.scaling = scaling
        self.file_index = file_index  # the file's load order: what ``lora_configs`` entries name
        self.strength = 1.0
        self.enabled = True
        device = base.device
        for name, value in params.items():
            setattr(self, name, nn.Parameter(value.to(device), requires_grad=False))
        if adapter_type.endswith("-xs"):
            u, v = _svd_bases(base.reshape(base.shape[0], -1), params["M_xs"].shape[0])
            self.register_buffer("U", u.to(device))
            self.register_buffer("V", v.to(device))

    def _delta(self) -> torch.Tensor:
        if self.adapter_type.endswith("-xs"):
            return self.U @ self.M_xs @ self.V.T
        return self.lora_B @ self.lora_A

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.enabled or self.strength == 0:
            return weight
        flat = weight.reshape(weight.shape[0], -1)
        scaled = self.scaling * self.strength * self._delta()
        kind = self.adapter_type.removesuffix("-xs")
        if kind == "lora":
            return (flat + scaled.to(flat.dtype)).reshape(weight.shape)
        v = flat.float() + scaled
        if kind in ("dora-rows", "bora"):
            mag = self.magnitude if kind == "dora-rows" else self.magnitude_r
            v = v / (v.norm(dim=1, keepdim=True) + 1e-12) * mag.reshape(-1, 1)
        if kind in ("dora-cols", "bora"):
            mag = self.magnitude if kind == "dora-cols" else self.magnitude_c
            v = v / (v.norm(dim=0, keepdim=True) + 1e-12) * mag.reshape(1, -1)
        return v.to(weight.dtype).reshape(weight.shape)


def _base_weight(module: nn.Module) -> torch.Tensor:
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


class LoraStack:
    """The LoRA files loaded onto a model, in load order."""

    def __init__(self, roots: list[nn.Module]):
        self.roots = roots
        self.files: list[LoraFile] = []
        self._adapters: list[list[LoraAdapter]] = []  # per file
        self._modules: list[nn.Module] = []

    def load(self, paths) -> None:
        """Add the files (checked first, so a bad file leaves the model as it was)."""
        if isinstance(paths, (str, Path)):
            paths = [paths]
        parsed = [read_lora_file(p) for p in paths]
        plans = [_check_fits(lora, self.roots) for lora in parsed]
        for lora, targets in zip(parsed, plans, strict=True):
            adapters = []
            for path, module in targets.items():
                adapter = LoraAdapter(
                    lora.layers[path],
                    lora.adapter_type,
                    lora.alpha / lora.rank,
                    _base_weight(module),
                    file_index=len(self.files),
                )
                parametrize.register_parametrization(module, "weight", adapter, unsafe=True)
                adapters.append(adapter)
                if module not in self._modules:
                    self._modules.append(module)
            self.files.append(lora)
            self._adapters.append(adapters)

    def set_strength(self, strength: float, lora_index: int | None = None) -> None:
        """Set the strength of one file's adapters (by load index) or of all of them."""
        if lora_index is not None and not 0 <= lora_index < len(self.files):
            raise ValueError(
                f"lora_index {lora_index} is out of range: {len(self.files)} LoRA file(s) are loaded."
            )
        for i, adapters in enumerate(self._adapters):
            if lora_index is None or i == lora_index:
                for adapter in adapters:
                    adapter.strength = float(strength)

    def unload(self) -> None:
        """Remove every adapter and put back the original weight tensors."""
        for module in self._modules:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        self.files, self._adapters, self._modules = [], [], []

    @property
    def names(self) -> list[str]:
        return [lora.path.stem for lora in self.files]


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


def switch_adapters(
    root: nn.Module, sigma0: torch.Tensor, interval, layer_filter: str, lora_configs=None
) -> frozenset | None:
    """Enable the adapters under ``root`` iff ``sigma0`` is in their interval, except on filtered layers.

    ``interval`` and ``layer_filter`` apply to every file but those an entry of ``lora_configs``
    names by load index: those use the entry's own, as upstream's DiT does. Layer names are matched
    relative to ``root``. Returns the load indices of the files whose interval holds ``sigma0``
    (None when no adapters are attached).
    """
    adapters = [
        (name, adapter)
        for name, module in root.named_modules()
        for adapter in getattr(getattr(module, "parametrizations", None), "weight", None) or ()
        if isinstance(adapter, LoraAdapter)
    ]
    if not adapters:
        return None
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
    for name, adapter in adapters:
        index = adapter.file_index
        adapter.enabled = index in active and not any(pattern in name for pattern in patterns[index])
    return frozenset(active)
