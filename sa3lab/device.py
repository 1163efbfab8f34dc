"""Device and dtype policy, in one place, from plain facts about the machine.

bfloat16 only on GPUs with compute capability >= 8.0 (a T4 reports bf16 support through emulation:
float16 there), float16 on older CUDA GPUs, float32 on the CPU; on MPS float16 for the DiT but the
SAME autoencoder in float32 (bf16/fp16 SAME decodes turn into noise there) and never float64.

A CPU with a bfloat16 matrix unit (Intel AMX, or AVX-512 BF16 as on Zen 4 and Cooper Lake) may run
the opt-in bfloat16 fast mode (:func:`cpu_fast_mode`, ``choose(..., cpu_fast=True)``): about twice
as fast, but not seed-identical to float32 (same seed, audibly similar, numerically different).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Machine:
    """What the policy needs to know; :func:`probe` reads it from torch."""

    cuda: bool = False
    cuda_capability: tuple[int, int] | None = None
    cuda_name: str = ""
    cuda_total_gib: float = 0.0
    mps: bool = False
    cpu_amx: bool = False  # Intel AMX tiles (every AMX CPU has the bfloat16 tile ops)
    cpu_avx512_bf16: bool = False
    cpu_onednn: bool = False  # torch can reach those units through oneDNN

    @property
    def cpu_bf16_matrix_unit(self) -> str | None:
        """``"AMX"``, ``"AVX-512 BF16"`` or None: what makes bfloat16 fast on this CPU."""
        if not self.cpu_onednn:
            return None
        return "AMX" if self.cpu_amx else "AVX-512 BF16" if self.cpu_avx512_bf16 else None


@dataclass(frozen=True)
class Policy:
    device: str
    dit_dtype: torch.dtype
    autoencoder_dtype: torch.dtype
    reason: str
    warnings: list[str] = field(default_factory=list)


FAST_MODE_NOTE = (
    "bfloat16 fast mode: not seed-identical to float32 (the same seed gives slightly different audio)"
)


def probe() -> Machine:
    """The facts of this machine."""
    cpu = _cpu_facts()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Machine(True, (props.major, props.minor), props.name, props.total_memory / 2**30, **cpu)
    mps = getattr(torch.backends, "mps", None)
    return Machine(mps=bool(mps is not None and mps.is_available()), **cpu)


def _cpu_facts() -> dict[str, bool]:
    """What torch's CPU feature checks report (False where this torch version has no such check)."""

    def supported(check: str) -> bool:
        found = getattr(getattr(torch, "cpu", None), check, None)
        return bool(found()) if callable(found) else False

    return {
        "cpu_amx": supported("_is_amx_tile_supported"),
        "cpu_avx512_bf16": supported("_is_avx512_bf16_supported"),
        "cpu_onednn": torch.backends.mkldnn.is_available(),
    }


def cpu_fast_mode(machine: Machine, *, gpu_first: bool = False) -> Policy | None:
    """The CPU's opt-in bfloat16 fast mode, or None where the CPU has no bfloat16 matrix unit."""
    unit = machine.cpu_bf16_matrix_unit
    if unit is None:
        return None
    notes = [FAST_MODE_NOTE]
    if gpu_first:
        notes.append("This model is designed for a GPU; on the CPU a clip takes minutes.")
    return Policy("cpu", torch.bfloat16, torch.bfloat16, f"CPU with {unit}: {FAST_MODE_NOTE}", notes)


def choose(
    machine: Machine, *, gpu_first: bool = False, device: str | None = None, cpu_fast: bool = False
) -> Policy:
    """The device and dtypes to use for a model (``gpu_first`` for medium / SAME-L).

    ``cpu_fast``: on the CPU, the bfloat16 fast mode where :func:`cpu_fast_mode` offers it (float32,
    with a note saying why, where it does not); it changes nothing on a GPU.
    """
    target = device or ("cuda" if machine.cuda else "mps" if machine.mps else "cpu")
    notes = []
    if target.startswith("cuda"):
        cap = machine.cuda_capability or (0, 0)
        if cap >= (8, 0):
            return Policy(
                target,
                torch.bfloat16,
                torch.bfloat16,
                f"{machine.cuda_name}: bfloat16 (compute {cap[0]}.{cap[1]})",
            )
        return Policy(
            target,
            torch.float16,
            torch.float16,
            f"{machine.cuda_name}: float16 (compute {cap[0]}.{cap[1]} has no native bfloat16)",
        )
    if target == "mps":
        return Policy("mps", torch.float16, torch.float32, "Apple GPU: float16 DiT, float32 autoencoder")
    if cpu_fast:
        fast = cpu_fast_mode(machine, gpu_first=gpu_first)
        if fast is not None:
            return fast
        notes.append(
            "This CPU has no bfloat16 matrix unit (AMX or AVX-512 BF16), so the fast mode would not be "
            "faster: float32."
        )
    if gpu_first:
        notes.append("This model is designed for a GPU; on the CPU a clip takes minutes.")
    return Policy("cpu", torch.float32, torch.float32, "CPU: float32", notes)


def language_model_dtype(policy: Policy) -> torch.dtype:
    """The dtype for the Prompt Assistant's language model on ``policy.device``.

    bfloat16 where the GPU has it natively; float16 on Apple GPUs (unified memory is small); float32 on
    older CUDA GPUs, as a precaution against float16 overflow in language-model activations (a 2B
    model fits a 16 GB T4 in float32), and on the CPU.
    """
    if policy.dit_dtype == torch.bfloat16:
        return torch.bfloat16
    return torch.float16 if policy.device == "mps" else torch.float32


def free_memory_gib() -> dict[str, float]:
    """Free CPU RAM and, where CUDA exists, free GPU memory, in GiB."""
    import psutil

    out = {"cpu_free_gib": psutil.virtual_memory().available / 2**30}
    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        out["gpu_free_gib"] = free / 2**30
    return out
