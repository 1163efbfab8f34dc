"""Trainable LoRA adapters on a loaded model, chosen and initialised as upstream's LoRA training does.

Every ``nn.Linear`` and ``nn.Conv1d`` of the DiT (names relative to the DiT wrapper, ``model.…``)
and of the conditioners (``conditioners.…``) gets one adapter, unless ``include`` / ``exclude`` say
otherwise: a layer is kept when its name contains one of the ``include`` patterns (all layers when
``include`` is None) and none of the ``exclude`` patterns; ``[a-b]`` in a pattern stands for every
integer from a to b, and the match is a plain substring test (so ``layers.[0-3].`` picks blocks
0..3, while ``layers[0-3]`` matches nothing, as upstream). Initial values: ``lora_A`` Kaiming-uniform
(``a = sqrt(5)``), ``lora_B`` zeros, ``M_xs`` zeros, DoRA/BoRA magnitudes the row/column norms of
the base weight, -XS bases the top singular vectors of the base weight; so training starts from the
base model's behaviour. The adapters are :class:`~stable_audio_3.lora.LoraAdapter` objects (the same
maths as loading a file), made trainable, and the saved file is upstream's LoRA format.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import parametrize

from ..lora import (
    ADAPTER_TYPES,
    BAKED_NORM,
    BAKED_TYPES,
    LoraAdapter,
    base_weight,
    companion_bases,
    expand_ranges,
    layer_bases,
    read_lora_file,
    read_svd_bases,
)

ADAPTED_LAYERS = (nn.Linear, nn.Conv1d)
ADAPTER_PARAMS = {
    "lora": ("lora_A", "lora_B"),
    "dora-rows": ("lora_A", "lora_B", "magnitude"),
    "dora-cols": ("lora_A", "lora_B", "magnitude"),
    "bora": ("lora_A", "lora_B", "magnitude_r", "magnitude_c"),
    "lora-xs": ("M_xs",),
    "dora-rows-xs": ("M_xs", "magnitude"),
    "dora-cols-xs": ("M_xs", "magnitude"),
    "bora-xs": ("M_xs", "magnitude_r", "magnitude_c"),
}
KEY_INFIX = ".parametrizations.weight.0."  # files always name the first adapter slot


def _patterns(value) -> tuple[str, ...] | None:
    """Patterns from a list or a comma-separated string; empty means none given."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    patterns = tuple(str(p).strip() for p in parts if str(p).strip())
    return patterns or None


@dataclass(frozen=True)
class AdapterConfig:
    """Which layers get adapters and what kind (upstream's ``train_lora.py`` defaults)."""

    rank: int = 16
    alpha: float | None = None  # None: the rank (scaling alpha / rank = 1)
    adapter_type: str = "dora-rows"
    dropout: float = 0.0
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    def __post_init__(self):
        kind = "dora-rows" if self.adapter_type == "dora" else self.adapter_type
        if kind not in ADAPTER_TYPES:
            raise ValueError(
                f"adapter_type must be one of {', '.join(ADAPTER_TYPES)}, got {self.adapter_type!r}."
            )
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"rank must be a whole number of at least 1, got {self.rank!r}.")
        alpha = float(self.rank if self.alpha is None else self.alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha must be a positive number, got {self.alpha!r}.")
        if not 0 <= float(self.dropout) < 1:
            raise ValueError(f"dropout must be at least 0 and below 1, got {self.dropout!r}.")
        object.__setattr__(self, "adapter_type", kind)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "dropout", float(self.dropout))
        object.__setattr__(self, "include", _patterns(self.include))
        object.__setattr__(self, "exclude", _patterns(self.exclude))

    def lora_config(self) -> dict:
        """The ``lora_config`` header of a saved file (the keys upstream writes)."""
        return {
            "rank": self.rank,
            "alpha": self.alpha,
            "adapter_type": self.adapter_type,
            "dropout": self.dropout,
            "include": list(self.include) if self.include else None,
            "exclude": list(self.exclude) if self.exclude else None,
        }


def matches_any(name: str, patterns) -> bool:
    """Whether ``name`` contains any pattern (after ``[a-b]`` range expansion), as upstream."""
    return any(expanded in name for pattern in patterns or () for expanded in expand_ranges(pattern))


def target_layers(roots: dict[str, nn.Module], config: AdapterConfig) -> dict[str, nn.Module]:
    """``{name: layer}`` of the layers that get adapters, in module order (names as in the file)."""
    chosen = {}
    for root in roots.values():
        for name, module in root.named_modules():
            if not isinstance(module, ADAPTED_LAYERS):
                continue
            if config.include is not None and not matches_any(name, config.include):
                continue
            if config.exclude is not None and matches_any(name, config.exclude):
                continue
            chosen[name] = module
    if not chosen:
        raise ValueError(
            f"No layer matches include={list(config.include or [])} / exclude={list(config.exclude or [])}; "
            "patterns are substrings of names like 'model.transformer.layers.3.self_attn.to_qkv' "
            "(write 'layers.[0-3].' for a range of blocks)."
        )
    return chosen


def param_shapes(weight_shape, config: AdapterConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of one layer's adapter tensors for a weight of ``weight_shape``."""
    fan_out, fan_in = weight_shape[0], math.prod(weight_shape[1:])
    r, family = config.rank, config.adapter_type.removesuffix("-xs")
    if config.adapter_type.endswith("-xs"):
        shapes = {"M_xs": (r, r)}
    else:
        shapes = {"lora_A": (r, fan_in), "lora_B": (fan_out, r)}
    if family == "dora-rows":
        shapes["magnitude"] = (fan_out,)
    elif family == "dora-cols":
        shapes["magnitude"] = (fan_in,)
    elif family == "bora":
        shapes["magnitude_r"], shapes["magnitude_c"] = (fan_out,), (fan_in,)
    return shapes


def initial_params(
    weight: torch.Tensor, config: AdapterConfig, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Float32 starting values of one layer's adapter (the adapted weight equals ``weight``)."""
    flat = weight.detach().reshape(weight.shape[0], -1)
    norms = {"magnitude_r": 1, "magnitude_c": 0}
    norms["magnitude"] = 1 if config.adapter_type.startswith("dora-rows") else 0
    params = {}
    for name, shape in param_shapes(weight.shape, config).items():
        if name == "lora_A":
            params[name] = nn.init.kaiming_uniform_(torch.empty(shape), a=math.sqrt(5), generator=generator)
        elif name in norms:
            params[name] = flat.norm(dim=norms[name]).float()
        else:  # lora_B, M_xs: the update starts at zero
            params[name] = torch.zeros(shape)
    return {name: value.to(weight.device) for name, value in params.items()}


def _holds(root: nn.Module, name: str, module: nn.Module) -> bool:
    try:
        return root.get_submodule(name) is module
    except AttributeError:
        return False


class TrainableAdapter(LoraAdapter):
    """A :class:`LoraAdapter` whose tensors are trained (float32), with input dropout on ``lora_A``.

    Dropout is on exactly while :meth:`AdapterSet.dropping` has set a mask (``keep``, one per layer
    per training step, drawn from the trainer's own generator); the module's train/eval mode plays no
    part, so nothing a preview or a ``model.eval()`` does can switch it on or off.
    """

    def __init__(self, params, config: AdapterConfig, base: torch.Tensor, bases=None):
        super().__init__(params, config.adapter_type, config.alpha / config.rank, base, bases=bases)
        self.dropout = config.dropout
        self.keep: torch.Tensor | None = None  # (1, fan_in): 0 or 1 / (1 - dropout), as upstream's mask
        for param in self.parameters():
            param.requires_grad_(True)

    @property
    def drops(self) -> bool:
        """Whether this adapter takes dropout (upstream applies it to ``lora_A``; -XS has none)."""
        return self.dropout > 0 and not self.adapter_type.endswith("-xs")

    def _delta(self) -> torch.Tensor:
        if self.keep is None:
            return super()._delta()
        return self.lora_B @ (self.lora_A * self.keep)


@dataclass
class AdapterSet:
    """The trainable adapters attached to one model, by layer name."""

    config: AdapterConfig
    adapters: dict[str, TrainableAdapter] = field(default_factory=dict)
    modules: dict[str, nn.Module] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # layer name -> its root's name ("model", ...)

    @classmethod
    def attach(
        cls,
        roots: dict[str, nn.Module],
        config: AdapterConfig,
        generator: torch.Generator,
        start: dict[str, dict[str, torch.Tensor]] | None = None,
    ) -> AdapterSet:
        """Add an adapter to every target layer; ``start`` (layer -> params) overrides initial values
        (and gives -XS layers their frozen bases when it holds ``U`` and ``V``)."""
        out = cls(config)
        for name, module in target_layers(roots, config).items():
            base = base_weight(module)
            params = initial_params(base, config, generator)
            given = dict(start.get(name, {})) if start is not None else {}  # e.g. resuming
            frozen = (given.pop("U"), given.pop("V")) if "U" in given else None
            params.update({k: v.to(base.device, torch.float32) for k, v in given.items()})
            adapter = TrainableAdapter(params, config, base, frozen)
            parametrize.register_parametrization(module, "weight", adapter, unsafe=True)
            out.adapters[name], out.modules[name] = adapter, module
            out.roots[name] = next(r for r, root in roots.items() if _holds(root, name, module))
        return out

    def parameters(self) -> list[nn.Parameter]:
        return [p for adapter in self.adapters.values() for p in adapter.parameters()]

    @contextmanager
    def dropping(self, generator: torch.Generator):
        """One step's dropout masks on the adapters inside (none after), drawn from ``generator``.

        The masks are drawn on the CPU in layer order, one ``(1, fan_in)`` mask per adapter, so the
        same seed gives the same masks on any device; with dropout 0 nothing is drawn.
        """
        p = self.config.dropout
        dropping = [a for a in self.adapters.values() if a.drops]
        for adapter in dropping:
            keep = torch.empty(1, adapter.lora_A.shape[1]).bernoulli_(1 - p, generator=generator) / (1 - p)
            adapter.keep = keep.to(adapter.lora_A.device)
        try:
            yield
        finally:
            for adapter in dropping:
                adapter.keep = None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Adapter tensors under the file's key names (``<layer>.parametrizations.weight.0.<param>``)."""
        return {
            f"{name}{KEY_INFIX}{param}": getattr(adapter, param).detach()
            for name, adapter in self.adapters.items()
            for param in ADAPTER_PARAMS[self.config.adapter_type]
        }

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy tensors named as in :meth:`state_dict` into the adapters (all must be present)."""
        mine = self.state_dict()
        if set(tensors) != set(mine):
            raise ValueError("The saved adapter tensors do not match the adapters being trained.")
        with torch.no_grad():
            for key, value in tensors.items():
                mine[key].copy_(value)

    def detach(self) -> None:
        """Remove the adapters; each layer gets back its original weight tensor."""
        for module in self.modules.values():
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        self.adapters.clear()
        self.modules.clear()


def save_lora_file(
    path, adapters: AdapterSet, extra_metadata: dict | None = None, norm_base: str | None = None
) -> Path:
    """Write ``path`` in upstream's LoRA format: float16 tensors + a JSON ``lora_config`` header.

    Row-normalised DoRA files (``dora-rows``, ``dora-rows-xs``) also get each layer's baked row norms
    (float32 ``baked_vnorm_row``, from the float16 tensors as saved and the base weights as they are,
    with the metadata of upstream's later package), so they load without base-weight norms. ``-xs``
    files get the frozen SVD bases they were trained against beside them (:func:`companion_bases`,
    upstream's ``svd_bases.pt`` layout), since bases recomputed elsewhere may differ in sign.
    ``norm_base`` names the base model the norms were taken on. ``extra_metadata`` (JSON-able) goes
    under a separate ``training`` header key, which loaders that only read ``lora_config`` (upstream's,
    ours) ignore.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.to("cpu", torch.float16).contiguous() for k, v in adapters.state_dict().items()}
    for key, value in tensors.items():
        if not torch.isfinite(value).all():
            raise ValueError(f"Adapter tensor {key} is not finite (or overflows float16); nothing was saved.")
    config, metadata = adapters.config.lora_config(), {}
    if config["adapter_type"] in BAKED_TYPES:
        baked, dtype = _baked_norms(adapters, tensors)
        tensors.update(baked)
        config["baked_norms"] = len(baked)
        if norm_base:
            config["norm_base"] = metadata["base_model"] = norm_base
        metadata.update(
            baked_variant=config["adapter_type"],
            baked_norms=str(len(baked)),
            norm_dtype=dtype,
            baked_by="sa3lab",
        )
    if config["adapter_type"].endswith("-xs"):
        bases = companion_bases(path)
        torch.save(
            {
                f"{adapters.roots[name]}.{name}.weight": {"U": a.U.detach().cpu(), "V": a.V.detach().cpu()}
                for name, a in adapters.adapters.items()
            },
            bases,
        )
        metadata["svd_bases"] = bases.name
    metadata["lora_config"] = json.dumps(config)
    if extra_metadata:
        metadata["training"] = json.dumps(extra_metadata)
    save_file(tensors, str(path), metadata=metadata)
    return path


def _baked_norms(adapters: AdapterSet, tensors: dict) -> tuple[dict[str, torch.Tensor], str]:
    """Each layer's ``||W0 + (alpha / rank) * delta||`` per row at strength 1, from the saved tensors,
    and the dtype of the base weights they were taken against."""
    baked, dtypes = {}, set()
    for name, adapter in adapters.adapters.items():
        saved = {
            k.rsplit(".", 1)[1]: v.float() for k, v in tensors.items() if k.startswith(f"{name}{KEY_INFIX}")
        }
        if "M_xs" in saved:
            delta = adapter.U.detach().cpu().float() @ saved["M_xs"] @ adapter.V.detach().cpu().float().T
        else:
            delta = saved["lora_B"] @ saved["lora_A"]
        base = base_weight(adapters.modules[name]).detach()
        dtypes.add(str(base.dtype).removeprefix("torch."))
        v = base.cpu().reshape(base.shape[0], -1).float() + adapter.scaling * delta
        baked[f"{name}{KEY_INFIX}{BAKED_NORM}"] = v.norm(dim=1).contiguous()
    return baked, "float32" if len(dtypes) != 1 else dtypes.pop()


def read_start(path, roots: dict[str, nn.Module]) -> tuple[AdapterConfig, dict, dict]:
    """Adapter settings, per-layer tensors and ``training`` header of a LoRA file to resume from.

    Refuses, with one sentence, a file whose layers this model lacks or whose shapes differ.
    """
    lora = read_lora_file(path)
    header = lora.config
    config = AdapterConfig(
        rank=lora.rank,
        alpha=lora.alpha,
        adapter_type=lora.adapter_type,
        dropout=float(header.get("dropout") or 0.0),
        include=header.get("include"),
        exclude=header.get("exclude"),
    )
    try:
        targets = target_layers(roots, config)
    except ValueError:
        targets = {}
    misfits = [name for name in lora.layers if name not in targets]
    start = {}
    for name, params in lora.layers.items():
        if name not in targets:
            continue
        shapes = param_shapes(base_weight(targets[name]).shape, config)
        if any(k in shapes and params[k].numel() != math.prod(shapes[k]) for k in params):
            misfits.append(name)
            continue
        start[name] = {k: v.reshape(shapes[k]) for k, v in params.items() if k in shapes}
    if misfits:
        raise ValueError(
            f"The LoRA file {Path(path).name} was made for another model (its layer '{misfits[0]}' does "
            "not fit this one); resume with a file trained on this base model."
        )
    if lora.adapter_type.endswith("-xs") and companion_bases(path).is_file():  # keep training against them
        start = with_frozen_bases(companion_bases(path), roots, config, start)
    return config, start, _training_header(path)


def with_frozen_bases(path, roots: dict[str, nn.Module], config: AdapterConfig, start=None) -> dict:
    """``start`` (layer -> params) with every target layer's ``U`` and ``V`` taken from a frozen
    ``svd_bases.pt`` (upstream's layout), for an -XS run that trains against them."""
    bases = read_svd_bases(path)
    start = {name: dict(params) for name, params in (start or {}).items()}
    for name, layer in target_layers(roots, config).items():
        u, v = layer_bases(bases, path, name, base_weight(layer), config.rank)
        start.setdefault(name, {}).update(U=u, V=v)
    return start


def _training_header(path) -> dict:
    from safetensors import safe_open

    if Path(path).suffix != ".safetensors":
        return {}
    with safe_open(str(path), framework="pt", device="cpu") as f:
        raw = (f.metadata() or {}).get("training")
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
