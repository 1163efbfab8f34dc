"""Device and dtype policy (sa3lab.device)."""

from pathlib import Path

import pytest
import torch

from sa3lab.device import Machine, choose, cpu_fast_mode, probe


@pytest.mark.parametrize(
    "machine, device, dit, ae",
    [
        (
            Machine(cuda=True, cuda_capability=(8, 0), cuda_name="A100"),
            "cuda",
            torch.bfloat16,
            torch.bfloat16,
        ),
        (
            Machine(cuda=True, cuda_capability=(7, 5), cuda_name="Tesla T4"),
            "cuda",
            torch.float16,
            torch.float16,
        ),
        (Machine(mps=True), "mps", torch.float16, torch.float32),
        (Machine(), "cpu", torch.float32, torch.float32),
    ],
)
def test_dtype_policy(machine, device, dit, ae):
    policy = choose(machine)
    assert (policy.device, policy.dit_dtype, policy.autoencoder_dtype) == (device, dit, ae)
    assert torch.float64 not in (policy.dit_dtype, policy.autoencoder_dtype)


def test_gpu_first_models_warn_on_cpu():
    assert choose(Machine(), gpu_first=True).warnings
    assert not choose(Machine(), gpu_first=False).warnings


AMX_CPU = Machine(cpu_amx=True, cpu_avx512_bf16=True, cpu_onednn=True)


def test_cpu_fast_mode_needs_a_bfloat16_matrix_unit_and_stays_opt_in():
    fast = cpu_fast_mode(AMX_CPU)
    assert (fast.device, fast.dit_dtype, fast.autoencoder_dtype) == ("cpu", torch.bfloat16, torch.bfloat16)
    assert "AMX" in fast.reason and "not seed-identical" in fast.reason
    assert choose(AMX_CPU).dit_dtype == torch.float32  # float32 stays the default
    assert choose(AMX_CPU, cpu_fast=True) == fast
    assert "AVX-512 BF16" in cpu_fast_mode(Machine(cpu_avx512_bf16=True, cpu_onednn=True)).reason
    assert cpu_fast_mode(AMX_CPU, gpu_first=True).warnings[-1].startswith("This model is designed for a GPU")
    for without in (
        Machine(cpu_onednn=True),
        Machine(cpu_amx=True, cpu_avx512_bf16=True),
    ):  # no unit / no oneDNN
        assert cpu_fast_mode(without) is None
        policy = choose(without, cpu_fast=True)
        assert policy.dit_dtype == torch.float32
        assert any("no bfloat16 matrix unit" in note for note in policy.warnings)
    t4 = Machine(cuda=True, cuda_capability=(7, 5), cuda_name="Tesla T4", cpu_amx=True, cpu_onednn=True)
    assert choose(t4, cpu_fast=True) == choose(t4)  # a GPU machine keeps its GPU policy


def test_probe_reports_the_cpu_units_the_kernel_lists():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("needs Linux's /proc/cpuinfo")
    flags = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split()
    machine = probe()
    assert machine.cpu_amx == ("amx_tile" in flags)
    assert machine.cpu_avx512_bf16 == ("avx512_bf16" in flags)
