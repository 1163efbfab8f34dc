"""The safetensors reader: same tensors as the reference library, aligned memory, clear errors."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from stable_audio_3.loading import (
    DamagedFileError,
    check_safetensors,
    has_prefix,
    read_config,
    read_safetensors,
)


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
    with pytest.raises(DamagedFileError, match="truncated inside tensor 'b.flag'"):
        read_safetensors(checkpoint)


def _header_bytes(header: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda data: data[:-3], r"is truncated: \d+ of \d+ bytes"),
        (lambda data: data + b"\0" * 5, "has the wrong size"),
        (lambda data: data[:5], "is not a safetensors file: it holds only 5 bytes"),
        (
            lambda data: (10**9).to_bytes(8, "little") + data[8:],
            "not a safetensors file: its header would take",
        ),
        (lambda data: data[:40], r"is truncated: 40 of at least \d+ bytes"),
        (lambda data: _header_bytes(b"{not json"), "header: it is not valid JSON"),
        (lambda data: _header_bytes(b"[1, 2]"), "header: it holds no JSON object"),
        (
            lambda data: _header_bytes(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}'),
            "broken header entry for tensor 'a'",
        ),
    ],
)
def test_damaged_files_are_one_error_type_that_names_the_damage(checkpoint, damage, words):
    check_safetensors(checkpoint)  # the intact file passes
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    with pytest.raises(DamagedFileError, match=words) as info:
        check_safetensors(checkpoint)
    assert info.value.path == checkpoint and str(checkpoint) in str(info.value)
    assert "download it again" in str(info.value)


def test_a_header_whose_shape_does_not_fit_its_data_is_damaged(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(
        _header_bytes(b'{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}') + b"\0" * 8
    )
    check_safetensors(path)  # the size fits the offsets ...
    with pytest.raises(DamagedFileError, match="tensor 'a' that does not fit its size"):
        read_safetensors(path)  # ... but not the shape


def test_a_broken_config_names_the_file(tmp_path):
    config = tmp_path / "model_config.json"
    config.write_text('{"model": ')
    with pytest.raises(DamagedFileError, match="model_config.json is not valid JSON") as info:
        read_config(config)
    assert isinstance(info.value, ValueError) and info.value.path == config
    config.write_text("[]")
    with pytest.raises(DamagedFileError, match="holds no JSON object"):
        read_config(config)
