"""Strict checkpoint loading: safetensors straight into a module, one copy of the weights.

:func:`load_weights` is the one loading path of both model wrappers: the module is built on the
meta device, filled with ``assign=True`` (the weights are read once from disk into the target
device and dtype), and frozen for inference. Any mismatch between the file and the module is an
error that names the key and the file. A file that cannot be read as what it should be (a
safetensors file that is truncated, of the wrong size or with a broken header; a config that is not
a JSON object) raises :class:`DamagedFileError`, so that callers can fetch it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model built from its config."""


class DamagedFileError(ValueError):
    """A file is damaged: ``problem`` says how (e.g. "is truncated: 100 of 2000 bytes")."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path} {problem}; download it again or replace it with the original.")
        self.path, self.problem = Path(path), problem


_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_header(path) -> tuple[dict, int]:
    """The safetensors JSON header of ``path`` (tensor entries only) and the offset where data starts.

    Raises :class:`DamagedFileError` when the header cannot be read or does not describe tensors.
    """
    size_on_disk = Path(path).stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise DamagedFileError(path, f"is not a safetensors file: it holds only {size_on_disk} bytes")
        size = int.from_bytes(prefix, "little")
        if size > MAX_HEADER_BYTES:
            raise DamagedFileError(path, f"is not a safetensors file: its header would take {size} bytes")
        if size > size_on_disk - 8:
            raise DamagedFileError(path, f"is truncated: {size_on_disk} of at least {8 + size} bytes")
        try:
            header = json.loads(f.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise DamagedFileError(path, "has a broken header: it is not valid JSON") from None
    if not isinstance(header, dict):
        raise DamagedFileError(path, "has a broken header: it holds no JSON object")
    header.pop("__metadata__", None)
    for key, info in header.items():
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]
            and isinstance(info.get("shape"), list)
            and all(isinstance(n, int) and n >= 0 for n in info["shape"])
            and "dtype" in info
        ):
            raise DamagedFileError(path, f"has a broken header entry for tensor '{key}'")
    return header, 8 + size


def check_safetensors(path) -> None:
    """DamagedFileError unless ``path`` has a readable header and exactly the size that header needs.

    Reads the header only, so it is cheap; a file cut short (or with bytes appended) fails here
    before anything is built from it.
    """
    header, start = read_header(path)
    expected = start + max((info["data_offsets"][1] for info in header.values()), default=0)
    actual = Path(path).stat().st_size
    if actual < expected:
        raise DamagedFileError(path, f"is truncated: {actual} of {expected} bytes")
    if actual > expected:
        raise DamagedFileError(path, f"has the wrong size: {actual} bytes where its header needs {expected}")


def read_safetensors(path, *, prefix: str = "") -> dict[str, torch.Tensor]:
    """CPU tensors of ``path`` whose key starts with ``prefix`` (stripped).

    Each tensor is read with plain file reads into its own freshly allocated (64-byte aligned)
    memory: no memory map stays resident beside the copy, so a model costs one copy of its weights,
    and CPU matmul kernels see aligned data (on unaligned views they round differently).
    """
    header, start = read_header(path)
    out = {}
    with open(path, "rb", buffering=0) as f:
        for key, info in header.items():
            if not key.startswith(prefix):
                continue
            if info["dtype"] not in _DTYPES:
                raise CheckpointMismatchError(
                    f"{path}: tensor '{key}' has unsupported dtype {info['dtype']}."
                )
            tensor = torch.empty(info["shape"], dtype=_DTYPES[info["dtype"]])
            begin, end = info["data_offsets"]
            if tensor.numel() * tensor.element_size() != end - begin:
                raise DamagedFileError(
                    path, f"has a header entry for tensor '{key}' that does not fit its size"
                )
            if end > begin:
                f.seek(start + begin)
                view = memoryview(tensor.view(-1).view(torch.uint8).numpy())
                if f.readinto(view) != end - begin:
                    raise DamagedFileError(path, f"is truncated inside tensor '{key}'")
            out[key[len(prefix) :]] = tensor
    return out


def has_prefix(path, prefix: str) -> bool:
    """Whether any tensor key in the safetensors file starts with ``prefix``."""
    return any(k.startswith(prefix) for k in read_header(path)[0])


def load_state_dict_strict(
    module: torch.nn.Module,
    state_dict: dict[str, torch.Tensor],
    *,
    source: str | Path,
    device=None,
    dtype: torch.dtype | None = None,
) -> torch.nn.Module:
    """Assign ``state_dict`` to ``module`` after checking keys and shapes exactly.

    Floating-point tensors are cast to ``dtype`` (if given) and everything is moved to ``device``.
    Raises :class:`CheckpointMismatchError` naming the first missing, unexpected or mis-shaped key
    and ``source``.
    """
    expected = module.state_dict(keep_vars=True)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing:
        raise CheckpointMismatchError(
            f"{source} has no weight '{missing[0]}' ({len(missing)} missing in all); "
            "the file does not belong to this model config."
        )
    if unexpected:
        raise CheckpointMismatchError(
            f"{source} has an unexpected weight '{unexpected[0]}' ({len(unexpected)} in all); "
            "the file does not belong to this model config."
        )
    prepared = {}
    for key, tensor in state_dict.items():
        want = tuple(expected[key].shape)
        if tuple(tensor.shape) != want:
            raise CheckpointMismatchError(
                f"{source}: weight '{key}' has shape {tuple(tensor.shape)} but the model config "
                f"needs {want}; the file does not belong to this model config."
            )
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        if device is not None:
            tensor = tensor.to(device)
        prepared[key] = tensor
    module.load_state_dict(prepared, strict=True, assign=True)
    return module


def load_checkpoint_strict(
    module: torch.nn.Module, path, *, prefix: str = "", device=None, dtype=None
) -> torch.nn.Module:
    """Read ``path`` (keys under ``prefix``) and load them strictly into ``module``."""
    state_dict = read_safetensors(path, prefix=prefix)
    return load_state_dict_strict(module, state_dict, source=path, device=device, dtype=dtype)


def check_dtype(name: str, value) -> None:
    """ValueError unless ``value`` is None or one of :data:`DTYPES`."""
    if value is not None and value not in DTYPES:
        raise ValueError(f"{name} must be one of {DTYPES}, got {value!r}.")


def resolve_device(device=None) -> torch.device:
    """``device`` as a torch.device; None means CUDA, else MPS, else CPU (upstream's order)."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def read_config(path) -> dict:
    """The JSON object in ``path``; :class:`DamagedFileError` naming the file if it is broken."""
    try:
        config = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFileError(
            path, f"is not valid JSON ({exc.__class__.__name__}: {getattr(exc, 'msg', exc)})"
        ) from None
    if not isinstance(config, dict):
        raise DamagedFileError(path, "holds no JSON object")
    return config


BUILD_ERRORS = (KeyError, TypeError, AttributeError, IndexError)  # a config missing or mistyping entries


def config_build_error(path, exc: Exception) -> DamagedFileError:
    """The error for a config that parses as JSON but does not describe a buildable model."""
    return DamagedFileError(
        path, f"does not describe a model this engine can build ({type(exc).__name__}: {exc})"
    )


def load_weights(
    build: Callable[[], torch.nn.Module],
    weights_path,
    *,
    device,
    dtype_for: Callable[[str], torch.dtype],
    prefix: str = "",
) -> torch.nn.Module:
    """``build()`` on the meta device, filled strictly from ``weights_path`` and frozen (eval, no grad).

    Floating-point weights take ``dtype_for(key)``; rotary frequency tables (``*inv_freq``) keep the
    dtype they are stored in (float32), whatever the target: in half precision the angles of later
    positions would be wrong.
    """
    with torch.device("meta"):
        module = build()
    state = read_safetensors(weights_path, prefix=prefix)
    for key, tensor in state.items():
        if tensor.is_floating_point() and not key.endswith("inv_freq"):
            state[key] = tensor.to(dtype_for(key))
    load_state_dict_strict(module, state, source=weights_path, device=device)
    return module.eval().requires_grad_(False)
