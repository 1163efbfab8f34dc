"""LoRA files: parsing, adapter maths, stacking, strength, exact unloading and bad files."""

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from stable_audio_3.lora import LoraNote, LoraStack, read_lora_file


class Toy(nn.Module):
    """Stands in for the DiT wrapper: Linear and Conv1d layers under ``model.``."""

    def __init__(self):
        super().__init__()
        self.model = nn.Module()
        self.model.proj = nn.Linear(6, 5, bias=False)
        self.model.conv = nn.Conv1d(4, 3, kernel_size=3, bias=False)


def write_lora(path, layers: dict, adapter_type="lora", rank=2, alpha=4.0):
    tensors = {}
    for module, params in layers.items():
        for name, value in params.items():
            tensors[f"{module}.parametrizations.weight.0.{name}"] = value.half()
    config = {"rank": rank, "alpha": alpha, "adapter_type": adapter_type}
    save_file(tensors, str(path), metadata={"lora_config": json.dumps(config)})
    return path


def lora_params(out_dim, in_dim, rank=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "lora_A": torch.randn(rank, in_dim, generator=g),
        "lora_B": torch.randn(out_dim, rank, generator=g),
    }


@pytest.fixture
def toy():
    torch.manual_seed(0)
    return Toy()


def test_plain_lora_adds_scaled_product_and_unloads_bit_exactly(toy, tmp_path):
    base_proj = toy.model.proj.weight.detach().clone()
    base_conv = toy.model.conv.weight.detach().clone()
    p1, p2 = lora_params(5, 6, seed=1), lora_params(3, 12, seed=2)
    path = write_lora(tmp_path / "a.safetensors", {"model.proj": p1, "model.conv": p2})
    stack = LoraStack([toy])
    stack.load([path])

    a, b = p1["lora_A"].half().float(), p1["lora_B"].half().float()
    torch.testing.assert_close(toy.model.proj.weight, base_proj + 2.0 * (b @ a))
    a2, b2 = p2["lora_A"].half().float(), p2["lora_B"].half().float()
    torch.testing.assert_close(toy.model.conv.weight, base_conv + (2.0 * (b2 @ a2)).reshape(3, 4, 3))

    stack.set_strength(0.5)
    torch.testing.assert_close(toy.model.proj.weight, base_proj + 1.0 * (b @ a))
    stack.set_strength(0.0)
    assert torch.equal(toy.model.proj.weight, base_proj)

    stack.unload()
    assert not hasattr(toy.model.proj, "parametrizations")
    assert torch.equal(toy.model.proj.weight, base_proj)
    assert torch.equal(toy.model.conv.weight, base_conv)


def test_a_second_load_adds_to_the_stack_and_strengths_are_per_file(toy, tmp_path):
    base = toy.model.proj.weight.detach().clone()
    pa, pb = lora_params(5, 6, seed=3), lora_params(5, 6, seed=4)
    stack = LoraStack([toy])
    stack.load(write_lora(tmp_path / "a.safetensors", {"model.proj": pa}))
    stack.load(write_lora(tmp_path / "b.safetensors", {"model.proj": pb}))
    assert stack.names == ["a", "b"]

    da = 2.0 * (pa["lora_B"].half().float() @ pa["lora_A"].half().float())
    db = 2.0 * (pb["lora_B"].half().float() @ pb["lora_A"].half().float())
    torch.testing.assert_close(toy.model.proj.weight, base + da + db)
    stack.set_strength(0.0, lora_index=0)
    torch.testing.assert_close(toy.model.proj.weight, base + db)
    stack.set_strength(0.25, lora_index=1)
    torch.testing.assert_close(toy.model.proj.weight, base + 0.25 * db)
    with pytest.raises(ValueError, match="out of range"):
        stack.set_strength(1.0, lora_index=2)
    stack.unload()
    assert torch.equal(toy.model.proj.weight, base)


@pytest.mark.parametrize("kind", ["dora-rows", "dora-cols"])
def test_dora_normalises_and_rescales(toy, tmp_path, kind):
    base = toy.model.proj.weight.detach().clone()
    params = lora_params(5, 6, seed=5)
    params["magnitude"] = torch.rand(5 if kind == "dora-rows" else 6) + 0.5
    stack = LoraStack([toy])
    stack.load(write_lora(tmp_path / "d.safetensors", {"model.proj": params}, adapter_type=kind))
    v = base + 2.0 * (params["lora_B"].half().float() @ params["lora_A"].half().float())
    mag = params["magnitude"].half().float()
    if kind == "dora-rows":
        want = v / (v.norm(dim=1, keepdim=True) + 1e-12) * mag[:, None]
    else:
        want = v / (v.norm(dim=0, keepdim=True) + 1e-12) * mag[None, :]
    torch.testing.assert_close(toy.model.proj.weight, want)
    stack.set_strength(0.0)
    assert torch.equal(toy.model.proj.weight, base)


def test_lora_xs_uses_sign_fixed_svd_bases_of_the_base_weight(toy, tmp_path):
    base = toy.model.proj.weight.detach().clone()
    m = torch.randn(2, 2)
    stack = LoraStack([toy])
    with pytest.warns(LoraNote, match="without the frozen SVD bases file"):  # bases recomputed: say so
        stack.load(
            write_lora(tmp_path / "x.safetensors", {"model.proj": {"M_xs": m}}, adapter_type="lora-xs")
        )
    u, _, vh = torch.linalg.svd(base, full_matrices=False)
    u, v = u[:, :2], vh[:2].T
    for j in range(2):
        if u[u[:, j].abs().argmax(), j] < 0:
            u[:, j], v[:, j] = -u[:, j], -v[:, j]
    torch.testing.assert_close(toy.model.proj.weight, base + 2.0 * (u @ m.half().float() @ v.T))


def test_a_lora_for_another_model_is_refused_and_the_model_is_untouched(toy, tmp_path):
    base = toy.model.proj.weight.detach().clone()
    good = write_lora(tmp_path / "good.safetensors", {"model.proj": lora_params(5, 6)})
    wrong_shape = write_lora(tmp_path / "wide.safetensors", {"model.proj": lora_params(5, 9)})
    wrong_layer = write_lora(tmp_path / "other.safetensors", {"model.nope": lora_params(5, 6)})
    stack = LoraStack([toy])
    with pytest.raises(ValueError, match="another model"):
        stack.load([good, wrong_shape])
    with pytest.raises(ValueError, match="does not have"):
        stack.load([wrong_layer])
    assert stack.files == [] and torch.equal(toy.model.proj.weight, base)
    assert not hasattr(toy.model.proj, "parametrizations")


def test_corrupt_and_non_lora_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00not a safetensors file")
    with pytest.raises(ValueError, match="cannot be read as safetensors"):
        read_lora_file(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(plain))
    with pytest.raises(ValueError, match="lora_config"):
        read_lora_file(plain)
    with pytest.raises(ValueError, match="does not exist"):
        read_lora_file(tmp_path / "missing.safetensors")


def test_the_fixture_lora_file_parses():
    from parity import MODELS

    lora = read_lora_file(MODELS / "lora" / "lora_a.safetensors")
    assert (lora.rank, lora.alpha, lora.adapter_type) == (4, 8.0, "lora")
    assert "conditioners.seconds_total.embedder.embedding.1" in lora.layers
    assert all(p["lora_A"].dtype == torch.float32 for p in lora.layers.values())
