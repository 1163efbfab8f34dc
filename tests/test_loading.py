"""The safetensors reader: same tensors as the reference library, aligned memory, clear errors."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from stable_audio_3.loading import CheckpointMismatchError, has_prefix, read_safetensors


@pytest.fixture
def checkpoint(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "a.weight": torch.randn(3, 5, generator=g),
        "a.half": torch.randn(7, generator=g).half(),
        "b.bf16": torch.randn(2, 2, generator=g).bfloat16(),
        "b.flag": torch.tensor([True, False, True]),
        "b.index": torch.arange(4),
        "b.empty": torch.zeros(1, 0, 1),
    }
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


def test_reads_what_safetensors_reads_into_aligned_memory(checkpoint):
    ours, reference = read_safetensors(checkpoint), load_file(str(checkpoint))
    assert ours.keys() == reference.keys()
    for key, tensor in ours.items():
        assert tensor.dtype == reference[key].dtype and torch.equal(tensor, reference[key]), key
        assert tensor.numel() == 0 or tensor.data_ptr() % 64 == 0, key


def test_prefix_selects_and_strips(checkpoint):
    assert set(read_safetensors(checkpoint, prefix="b.")) == {"bf16", "flag", "index", "empty"}
    assert has_prefix(checkpoint, "a.") and not has_prefix(checkpoint, "c.")


def test_a_truncated_file_names_the_tensor(checkpoint):
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[:-3])
    with pytest.raises(CheckpointMismatchError, match="truncated"):
        read_safetensors(checkpoint)
