"""Device and dtype policy (sa3lab.device)."""

import pytest
import torch

from sa3lab.device import Machine, choose


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
