"""Saved outputs (sa3lab.runs): names, atomic writes, sidecars, no token."""

import json
import math
from pathlib import Path

import soundfile as sf
import torch

from sa3lab.runs import RunResult, save_result

SR = 44100


def _result(batch=1, seconds=0.5):
    t = torch.arange(int(SR * seconds)) / SR
    audio = (0.3 * torch.sin(2 * math.pi * 440 * t)).expand(batch, 2, -1).clone()
    return RunResult(
        audio,
        SR,
        1234,
        "small-music",
        "stabilityai/stable-audio-3-small-music",
        "abc123",
        "cpu",
        "float32",
        {"sampling": 1.0},
        False,
        2.5,
    )


def test_save_writes_wav_and_sidecar_and_names_never_collide(tmp_path):
    first = save_result(_result(), tmp_path)
    second = save_result(_result(), tmp_path)
    assert len(set(first + second)) == 2
    data, rate = sf.read(first[0])
    assert rate == SR and data.shape == (int(SR * 0.5), 2)
    meta = json.loads(open(first[0].replace(".wav", ".json")).read())
    assert meta["seed"] == 1234 and meta["revision"] == "abc123" and "torch" in meta["versions"]
    assert "token" not in json.dumps(meta).lower()
    assert not list(tmp_path.glob(".tmp-*"))
    batch = save_result(_result(batch=2), tmp_path)
    assert [p.rsplit("-", 1)[1] for p in batch] == ["0.wav", "1.wav"]


def test_saved_files_get_the_users_normal_permissions_not_owner_only(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    wav = Path(save_result(_result(), tmp_path)[0])
    for path in (wav, wav.with_suffix(".json")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path.name  # 0644 under umask 022


def test_file_names_are_short_and_readable_and_the_record_keeps_the_full_folder(tmp_path):
    folder = "/very/long/path/to/a/workshop/share/with/models/" + "x" * 60 + "/my-small-music"
    result = _result()
    result.model_key, result.settings = folder, {"prompt": "Warm analog synth arpeggio, 120 BPM, deep bass"}
    wav = Path(save_result(result, tmp_path)[0])
    stamp, rest = wav.stem.split("-", 1)
    assert len(stamp) == 16 and rest == "my-small-music-warm_analog_synth_arpeggio-1234"
    assert json.loads(wav.with_suffix(".json").read_text())["model_key"] == folder
    result.model_key, result.settings = "demo", {}
    assert Path(save_result(result, tmp_path)[0]).stem.endswith("-demo-1234")
