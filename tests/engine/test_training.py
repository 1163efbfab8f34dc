"""LoRA training: upstream's one-step reference, learning, saving/loading, stop and resume, bad input."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from parity import MODELS
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from training_helpers import assert_upstream_keys

from stable_audio_3 import StableAudioModel
from stable_audio_3.lora import companion_bases
from stable_audio_3.training import (
    AdapterConfig,
    LoraTrainer,
    StepDraws,
    TrainingSettings,
    TrainingStopped,
    draw_step,
)
from stable_audio_3.training.adapters import AdapterSet, save_lora_file
from stable_audio_3.training.data import Batch

REF = Path(__file__).parents[1] / "fixtures" / "lora-train-step"
META = json.loads((REF / "meta.json").read_text())
BASE = MODELS / "small-music-base"
FRAME = 4096
SHORT = 6 * FRAME / 44100  # 0.56 s: six latent frames (encodings have an even length)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def base_model():
    """The tiny base fixture with upstream's CPU attention (the reference was recorded there)."""
    return StableAudioModel.from_pretrained(str(BASE), device="cpu", attention_padding="upstream_fallback")


def write_clips(folder: Path, count: int = 4, seconds=(0.6, 0.8, 1.0, 1.2), captions=True) -> Path:
    """A small generated dataset: stereo tones and noise bursts with one caption each."""
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(0)
    for i in range(count):
        n = int(44100 * seconds[i % len(seconds)])
        t = np.arange(n) / 44100
        tone = 0.3 * np.sin(2 * np.pi * 110 * (i + 2) * t) + 0.02 * g.standard_normal(n)
        sf.write(folder / f"clip{i}.wav", np.stack([tone, 0.7 * tone], 1).astype(np.float32), 44100)
        if captions:
            (folder / f"clip{i}.txt").write_text(f"a bright tone, pitch {i}\n")
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return write_clips(tmp_path_factory.mktemp("clips"))


def open_trainer(model, data, **settings) -> LoraTrainer:
    adapter = settings.pop("adapter", AdapterConfig(rank=4))
    return LoraTrainer(model, data, TrainingSettings(adapter=adapter, **settings))


def recorded_draws(t: dict) -> StepDraws:
    return StepDraws(
        timestep_sample=t["draw.t_sample"],
        noise=t["draw.noise"],
        kept_length=t["draw.augmented_padding_mask"].sum(1),
        inpaint_mask=t["draw.inpaint_mask"],
        cfg_dropout=t["draw.cfg_dropout"].bool(),
    )


def recorded_adapter(case: dict) -> AdapterConfig:
    config = case["lora_config"]
    return AdapterConfig(
        **{k: config[k] for k in ("rank", "alpha", "adapter_type", "dropout", "include", "exclude")}
    )


def recorded_init(t: dict) -> dict[str, torch.Tensor]:
    return {k.removeprefix("init."): v for k, v in t.items() if k.startswith("init.")}


def audio_batch(t: dict) -> Batch:
    """The reference batch: the two int16-exact clips zero-padded to 65536 samples."""
    clips = [t["input.clip0"].float() / 32767, t["input.clip1"].float() / 32767]
    signal = torch.zeros(2, 2, 65536)
    for i, clip in enumerate(clips):
        signal[i, :, : clip.shape[1]] = clip
    meta = META["main"]
    valid = torch.tensor([c.shape[1] for c in clips])
    return Batch(signal, valid, meta["prompts"], [float(s) for s in meta["seconds_total"]], encoded=False)


def latent_batch() -> Batch:
    t = load_file(str(REF / "latents.safetensors"))
    meta = META["main"]
    seconds = [float(s) for s in meta["seconds_total"]]
    return Batch(t["input.latents"], t["input.valid_frames"], meta["prompts"], seconds, encoded=True)


def close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-4) -> None:
    """Equal up to float32 evaluation order (an independent implementation sums differently)."""
    scale = float(expected.abs().max()) or 1.0
    actual = actual.detach().float().reshape(expected.shape)
    torch.testing.assert_close(actual, expected.float(), rtol=rel, atol=rel * scale)


def adapter_grads(trainer) -> dict[str, torch.Tensor]:
    names = {id(p): n for n, p in _named(trainer)}
    return {names[id(p)]: p.grad for p in trainer.adapters.parameters()}


def _named(trainer):
    for layer, adapter in trainer.adapters.adapters.items():
        for param, value in adapter.named_parameters():
            yield f"{layer}.parametrizations.weight.0.{param}", value


# --------------------------------------------------------------------------- upstream reference


def test_one_step_matches_upstream_training_wrapper(base_model, clips):
    """Same adapters, batch and draws in: same DiT inputs, loss, gradients and AdamW update out."""
    t = load_file(str(REF / "main.safetensors"))
    trainer = open_trainer(base_model, clips, adapter=recorded_adapter(META["main"]))
    try:
        ours = trainer.adapters.state_dict()
        init = recorded_init(t)
        assert set(ours) == set(init)  # upstream's layer choice and tensor names
        for key, value in init.items():
            if key.endswith("magnitude"):  # deterministic: the base weight's row norms
                close(ours[key], value, 1e-6)
            if key.endswith("lora_B"):
                assert not ours[key].any()
        trainer.adapters.load_state_dict(init)

        seen = {}

        def hook(module, args, kwargs, output):
            seen.update(x=args[0], t=args[1], local=args[4], global_cond=args[3], mask=kwargs["padding_mask"])
            seen["out"] = output

        handle = base_model.model.dit.register_forward_hook(hook, with_kwargs=True)
        loss = trainer.loss(audio_batch(t), recorded_draws(t))
        handle.remove()
        close(seen["t"], t["dit.t"], 1e-6)
        close(seen["x"], t["dit.x"])
        close(seen["local"], t["dit.local_add_cond"])
        close(seen["global_cond"], t["dit.global_cond"])
        assert torch.equal(seen["mask"], t["dit.padding_mask"])
        close(seen["out"], t["dit.output"])
        close(loss, t["output.loss"])

        loss.backward()
        for name, grad in adapter_grads(trainer).items():
            close(grad, t[f"grad.{name}"], 2e-4)
        trainer.optimizer.zero_grad(set_to_none=True)
        # AdamW's first update is about lr per element whatever the gradient's size, so tiny gradients
        # amplify rounding (the DiT's per-item work rounds apart from upstream's batched one by ~1e-7):
        # compare to 2 % of lr (catches lr, weight decay; the second step, betas)
        for prefix in ("after", "after2"):
            trainer.train_step(audio_batch(t), recorded_draws(t))
            for name, value in trainer.adapters.state_dict().items():
                torch.testing.assert_close(value, t[f"{prefix}.{name}"], rtol=0, atol=2e-6)
    finally:
        trainer.close()


@pytest.mark.parametrize("kind", sorted(META["types"]))
def test_every_adapter_type_matches_upstream(base_model, clips, kind):
    """Rank 2, alpha 3, include/exclude filters, non-zero adapters (resumed state): loss and gradients."""
    t = load_file(str(REF / "types" / f"{kind}.safetensors"))
    trainer = open_trainer(base_model, clips, adapter=recorded_adapter(META["types"][kind]))
    try:
        trainer.adapters.load_state_dict(recorded_init(t))
        draws = recorded_draws(load_file(str(REF / "latents.safetensors")))
        loss = trainer.loss(latent_batch(), draws)
        close(loss, t["output.loss"])
        loss.backward()
        for name, grad in adapter_grads(trainer).items():
            close(grad, t[f"grad.{name}"], 2e-4)
    finally:
        trainer.close()


def test_seeded_draws_repeat_upstreams_and_pre_encoded_step_matches(base_model, clips):
    """With upstream's seed, our draws equal upstream's CPU draws; the latent-input step gives its loss."""
    t = load_file(str(REF / "latents.safetensors"))
    seed = META["step_seed"]
    draws = draw_step(
        t["input.valid_frames"],
        tuple(t["input.latents"].shape),
        frames_per_second=44100 / FRAME,
        generator=torch.Generator().manual_seed(seed),
        rng=random.Random(seed),
    )
    expected = recorded_draws(t)
    torch.testing.assert_close(draws.timestep_sample, expected.timestep_sample, rtol=0, atol=1e-7)
    assert torch.equal(draws.noise, expected.noise)
    assert torch.equal(draws.kept_length, expected.kept_length)
    assert torch.equal(draws.inpaint_mask, expected.inpaint_mask)
    assert torch.equal(draws.cfg_dropout, expected.cfg_dropout)
    main = load_file(str(REF / "main.safetensors"))
    trainer = open_trainer(base_model, clips, adapter=recorded_adapter(META["main"]))
    try:
        trainer.adapters.load_state_dict(recorded_init(main))
        close(trainer.loss(latent_batch(), draws), t["output.loss"])
    finally:
        trainer.close()


@pytest.mark.parametrize("kind", sorted(json.loads((REF / "expected_keys.json").read_text())))
def test_saved_file_has_exactly_the_keys_upstream_load_lora_expects(base_model, clips, tmp_path, kind):
    """Upstream re-creates adapters from the header and loads with strict=False: no key may be missing."""
    expected = json.loads((REF / "expected_keys.json").read_text())[kind]
    trainer = open_trainer(base_model, clips, adapter=AdapterConfig(rank=4, adapter_type=kind))
    try:
        path = save_lora_file(tmp_path / "a.safetensors", trainer.adapters)
    finally:
        trainer.close()
    assert_upstream_keys(path, kind)
    baked = kind in ("dora-rows", "dora-rows-xs")
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["lora_config"])
        dtypes = {k: f.get_tensor(k).dtype for k in f.keys()}
    assert all(
        d == (torch.float32 if k.endswith("baked_vnorm_row") else torch.float16) for k, d in dtypes.items()
    )
    extra = {"baked_norms": sum(k.endswith(".magnitude") for k in expected)} if baked else {}
    assert header == dict(
        rank=4, alpha=4.0, adapter_type=kind, dropout=0.0, include=None, exclude=None, **extra
    )
    assert companion_bases(path).is_file() == kind.endswith("-xs")


# --------------------------------------------------------------------------- training for real


def fixed_loss(trainer, batch, draws) -> float:
    with torch.no_grad():
        return trainer.loss(batch, draws).item()


def test_thirty_steps_lower_the_loss_and_the_file_changes_generation(base_model, clips, tmp_path):
    trainer = open_trainer(base_model, clips, steps=30, batch_size=2, duration=1.0, learning_rate=1e-3)
    batch = trainer.next_batch()
    trainer.order.restore({"epoch": 0, "position": 0})
    draws = draw_step(
        torch.tensor([10, 7]), (2, 32, 10), frames_per_second=44100 / FRAME,
        generator=torch.Generator().manual_seed(5), rng=random.Random(5),
    )  # fmt: skip
    before = fixed_loss(trainer, batch, draws)
    previews = []
    reports = trainer.train(
        save_path=tmp_path / "tone.safetensors",
        preview_every=15,
        on_preview=lambda tr: previews.append(tr.preview("a bright tone", duration=SHORT, steps=2, seed=1)),
    )
    after = fixed_loss(trainer, batch, draws)
    trainer.close()
    assert [r.step for r in reports] == list(range(1, 31)) and all(math.isfinite(r.loss) for r in reports)
    assert after < 0.8 * before
    assert len(previews) == 2 and all(torch.isfinite(p).all() for p in previews)

    plain = base_model.generate("a bright tone", duration=SHORT, steps=4, seed=3)
    base_model.load_lora(tmp_path / "tone.safetensors")
    try:
        adapted = base_model.generate("a bright tone", duration=SHORT, steps=4, seed=3)
    finally:
        base_model.unload_lora()
    assert (adapted - plain).abs().max() > 1e-3
    assert torch.equal(base_model.generate("a bright tone", duration=SHORT, steps=4, seed=3), plain)


@pytest.mark.parametrize("adapter", [AdapterConfig(rank=4), AdapterConfig(rank=4, dropout=0.3)])
def test_stop_mid_run_saves_a_file_that_resumes_exactly(base_model, clips, tmp_path, adapter):
    """With dropout too: its masks come from the run's own generator, whose state the resume file keeps."""
    straight = open_trainer(base_model, clips, steps=4, duration=SHORT, adapter=adapter)
    straight.train()
    expected = {k: v.clone() for k, v in straight.adapters.state_dict().items()}
    straight.close()

    def stop_at_two(report):
        if report.step == 2:
            raise TrainingStopped

    first = open_trainer(base_model, clips, steps=4, duration=SHORT, adapter=adapter)
    first.train(stop_at_two, save_path=tmp_path / "run.safetensors")
    first.close()
    assert (tmp_path / "run.resume.pt").is_file()
    resumed = LoraTrainer(
        base_model, clips, TrainingSettings(steps=4, duration=SHORT), resume_from=tmp_path / "run.safetensors"
    )
    assert resumed.step == 2 and resumed.adapter_config == adapter
    torch.manual_seed(12345)  # the global RNG plays no part
    resumed.train()
    try:
        assert resumed.step == 4 and len(resumed.losses) == 4
        for key, value in resumed.adapters.state_dict().items():
            assert torch.equal(value, expected[key]), key
    finally:
        resumed.close()

    # without the .resume.pt (e.g. a file from upstream): weights from the file, fresh optimiser
    (tmp_path / "run.resume.pt").unlink()
    bare = LoraTrainer(base_model, clips, TrainingSettings(steps=4), resume_from=tmp_path / "run.safetensors")
    try:
        saved = load_file(str(tmp_path / "run.safetensors"))
        assert bare.step == 2 and not bare.optimizer.state
        for key, value in bare.adapters.state_dict().items():
            assert torch.equal(value, saved[key].float())
    finally:
        bare.close()


def test_resume_from_an_upstream_lightning_checkpoint(base_model, clips, tmp_path):
    """Upstream's trainer writes .ckpt files holding only ``state_dict`` and ``lora_config`` (meta.json)."""
    assert META["lightning_ckpt"]["top_level_keys"] == ["lora_config", "state_dict"]
    t = load_file(str(REF / "types" / "bora.safetensors"))
    config = META["types"]["bora"]["lora_config"]
    torch.save({"state_dict": recorded_init(t), "lora_config": config}, tmp_path / "upstream.ckpt")
    trainer = LoraTrainer(base_model, clips, resume_from=tmp_path / "upstream.ckpt")
    try:
        assert trainer.step == 0 and trainer.adapter_config == recorded_adapter(META["types"]["bora"])
        for key, value in trainer.adapters.state_dict().items():
            assert torch.equal(value, recorded_init(t)[key])
    finally:
        trainer.close()


@pytest.mark.parametrize(
    ("saved", "kind"),
    [
        ("dora-cols", "dora-cols"),  # upstream's legacy bug: 1-D magnitudes, one per input feature
        ("dora-rows", "dora-rows"),  # what upstream's "dora" trains now: one per output row
    ],
)
@pytest.mark.parametrize("suffix", [".ckpt", ".safetensors"])
def test_resume_from_an_upstream_legacy_dora_checkpoint(base_model, clips, tmp_path, saved, kind, suffix):
    """A file that says only 'dora' is told apart by its 1-D magnitudes' length, not refused."""
    t = load_file(str(REF / "types" / f"{saved}.safetensors"))
    init = recorded_init(t)
    assert all(v.dim() == 1 for k, v in init.items() if k.endswith(".magnitude"))
    config = dict(META["types"][saved]["lora_config"], adapter_type="dora")
    path = tmp_path / f"legacy{suffix}"
    if suffix == ".ckpt":
        torch.save({"state_dict": init, "lora_config": config}, path)
    else:
        save_file(
            {k: v.half() for k, v in init.items()}, str(path), metadata={"lora_config": json.dumps(config)}
        )
    trainer = LoraTrainer(base_model, clips, TrainingSettings(steps=1, duration=SHORT), resume_from=path)
    try:
        assert trainer.adapter_config.adapter_type == kind
        for key, value in trainer.adapters.state_dict().items():
            expected = init[key] if suffix == ".ckpt" else init[key].half().float()
            assert torch.equal(value, expected), key
        trainer.train()
    finally:
        trainer.close()
    base_model.load_lora(str(path))  # loading for generation reads it the same way
    try:
        assert base_model.generate("a bright tone", duration=SHORT, steps=2, seed=1).isfinite().all()
    finally:
        base_model.unload_lora()


def test_legacy_dora_file_of_another_model_names_that(base_model, clips, tmp_path):
    """A 1-D magnitude that fits neither side of this model's layer: the file is for another model."""
    t = load_file(str(REF / "types" / "dora-cols.safetensors"))
    init = recorded_init(t)
    key = next(k for k in init if k.endswith(".magnitude"))
    init[key] = torch.ones(init[key].numel() + 1)
    config = dict(META["types"]["dora-cols"]["lora_config"], adapter_type="dora")
    torch.save({"state_dict": init, "lora_config": config}, tmp_path / "legacy.ckpt")
    with pytest.raises(ValueError, match="made for another model") as err:
        LoraTrainer(base_model, clips, resume_from=tmp_path / "legacy.ckpt")
    assert one_sentence(str(err.value))


def test_dropout_applies_from_step_one_and_previews_change_nothing(base_model, clips):
    """A run with previews every step or two ends bit-identical to the same run without any."""

    def run(adapter, preview_every=0, global_seed=0):
        torch.manual_seed(global_seed)  # the global RNG plays no part in training
        random.seed(global_seed)
        trainer = open_trainer(base_model, clips, steps=4, duration=SHORT, adapter=adapter)
        modes = []

        def look(tr):
            before = [m.training for m in base_model.model.modules()]
            tr.preview("a bright tone", duration=SHORT, steps=2)  # seed -1: a random one
            modes.append(before == [m.training for m in base_model.model.modules()])

        try:
            trainer.train_step()
            first = {k: v.clone() for k, v in trainer.adapters.state_dict().items()}
            trainer.train(preview_every=preview_every, on_preview=look)
            state = {k: v.clone() for k, v in trainer.adapters.state_dict().items()}
            return first, state, modes
        finally:
            trainer.close()

    dropping = AdapterConfig(rank=4, dropout=0.3)
    first, plain, _ = run(dropping)
    for every, seed in ((1, 1), (2, 7)):
        _, seen, modes = run(dropping, every, seed)
        assert modes and all(modes)  # each preview left every module in the mode it found
        assert seen.keys() == plain.keys()
        for key in plain:
            assert torch.equal(seen[key], plain[key]), key
    first_without, _, _ = run(AdapterConfig(rank=4))
    assert any(not torch.equal(first_without[k], first[k]) for k in first)  # masks act from step 1


def test_request_stop_from_another_thread_ends_after_the_current_step(base_model, clips, tmp_path):
    trainer = open_trainer(base_model, clips, steps=50, duration=SHORT)
    try:
        reports = trainer.train(lambda r: trainer.request_stop() if r.step == 3 else None)
    finally:
        trainer.close()
    assert [r.step for r in reports] == [1, 2, 3] and all(r.steps == 50 for r in reports)
    assert reports[-1].remaining == pytest.approx(reports[-1].elapsed / 3 * 47)
    assert all(r.memory_bytes > 0 and r.seconds > 0 for r in reports)


def test_base_precision_and_checkpointing(clips):
    model = StableAudioModel.from_pretrained(str(BASE), device="cpu")
    plain = open_trainer(model, clips, duration=SHORT, gradient_checkpointing=False)
    batch = plain.next_batch()
    draws = draw_step(
        torch.tensor([6]), (1, 32, 6), frames_per_second=44100 / FRAME,
        generator=torch.Generator().manual_seed(1), rng=random.Random(1),
    )  # fmt: skip
    loss = plain.loss(batch, draws)
    loss.backward()
    grads = [p.grad.clone() for p in plain.adapters.parameters()]
    plain.close()
    recomputed = open_trainer(model, clips, duration=SHORT, gradient_checkpointing=True)
    loss2 = recomputed.loss(batch, draws)
    loss2.backward()
    assert torch.equal(loss, loss2)
    assert all(torch.equal(a, b.grad) for a, b in zip(grads, recomputed.adapters.parameters(), strict=True))
    recomputed.close()

    half = open_trainer(model, clips, duration=SHORT, base_precision="bf16")
    try:
        report = half.train_step()
        assert math.isfinite(report.loss)
        assert model.model.dtype == torch.bfloat16
        assert all(p.dtype == torch.float32 for p in half.adapters.parameters())
        assert model.model.dit.transformer.rotary_pos_emb.inv_freq.dtype == torch.float32
    finally:
        half.close()


def test_dropout_masks_hold_through_gradient_checkpointing(base_model, clips):
    """Backward recomputes each block's adapted weights with the masks its forward pass used."""
    states = []
    for checkpointing in (False, True):
        trainer = open_trainer(
            base_model, clips, steps=2, duration=SHORT, gradient_checkpointing=checkpointing,
            adapter=AdapterConfig(rank=4, dropout=0.3),
        )  # fmt: skip
        try:
            trainer.train()
            states.append({k: v.clone() for k, v in trainer.adapters.state_dict().items()})
        finally:
            trainer.close()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


# --------------------------------------------------------------------------- data


def test_audio_dataset_pads_crops_and_reports_seconds_as_upstream(clips):
    from stable_audio_3.training.data import AudioCaptionDataset

    data = AudioCaptionDataset(clips, sample_rate=44100, sample_size=8 * FRAME)
    audio, valid, caption, seconds = data.item(0, random.Random(0))  # 0.6 s: padded
    assert audio.shape == (2, 8 * FRAME) and valid == 26460 and seconds == 1.0
    assert caption == "a bright tone, pitch 0" and not audio[:, valid:].any()
    short = AudioCaptionDataset(clips, sample_rate=44100, sample_size=4 * FRAME)
    audio, valid, _, seconds = short.item(3, random.Random(0))  # 1.2 s: cropped, whole length counted
    assert audio.shape == (2, 4 * FRAME) and valid == 4 * FRAME and seconds == 2.0


def test_audio_dataset_resamples_and_makes_mono_stereo(tmp_path):
    from stable_audio_3.training.data import AudioCaptionDataset

    t = np.arange(11025) / 22050
    sf.write(tmp_path / "mono.flac", 0.5 * np.sin(2 * np.pi * 440 * t), 22050)
    (tmp_path / "mono.txt").write_text("a sine")
    audio, valid, _, seconds = AudioCaptionDataset(tmp_path, sample_rate=44100, sample_size=8 * FRAME).item(
        0, random.Random(1)
    )
    assert valid == 22050 and seconds == 1.0 and torch.equal(audio[0], audio[1])
    assert 0.45 < audio[0, :valid].abs().max() < 0.55


def test_latent_folder_trains_and_pads_with_its_silence_latent(base_model, tmp_path, clips):
    folder = tmp_path / "latents"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i, frames in enumerate((6, 14)):
        np.save(folder / f"{i:012d}.npy", torch.randn(32, frames, generator=g).numpy())
        meta = dict(prompt=f"texture {i}", seconds_total=frames * FRAME / 44100, padding_mask=[1] * frames)
        (folder / f"{i:012d}.json").write_text(json.dumps(meta))
    np.save(folder / "silence.npy", np.full((1, 32, 3), 0.25, dtype=np.float32))
    trainer = open_trainer(base_model, folder, duration=10 * FRAME / 44100, batch_size=2)
    try:
        latents, valid, prompt, _ = trainer.dataset.item(0, random.Random(0))
        assert latents.shape == (32, 10) and valid == 6 and prompt == "texture 0"
        assert torch.equal(latents[:, 6:], torch.full((32, 4), 0.25))
        assert math.isfinite(trainer.train_step().loss)
    finally:
        trainer.close()


# --------------------------------------------------------------------------- bad input, one sentence each


def one_sentence(message: str) -> bool:
    return message.endswith(".") and message.count(". ") == 0


@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda d: None, "holds no audio files"),
        (lambda d: write_clips(d, captions=False), "have no caption file"),
        (
            lambda d: (
                write_clips(d, 2),
                (d / "broken.wav").write_bytes(b"RIFF not audio"),
                (d / "broken.txt").write_text("x"),
            ),
            "cannot be read as audio",
        ),  # fmt: skip
        (
            lambda d: (
                sf.write(d / "quiet.wav", np.zeros((4410, 2), np.float32), 44100),
                (d / "quiet.txt").write_text("silence"),
            ),
            "are silent",
        ),  # fmt: skip
    ],
)
def test_bad_dataset_gets_one_sentence(base_model, tmp_path, setup, words):
    folder = tmp_path / "data"
    folder.mkdir()
    setup(folder)
    with pytest.raises(ValueError, match=words) as err:
        open_trainer(base_model, folder)
    assert one_sentence(str(err.value))
    assert not any(m for m in base_model.model.modules() if hasattr(m, "parametrizations"))


def test_clips_without_captions_are_listed(base_model, tmp_path):
    folder = write_clips(tmp_path / "d")
    (folder / "clip1.txt").unlink()
    (folder / "clip3.txt").unlink()
    with pytest.raises(ValueError, match=r"2 clip\(s\) have no caption file .*: clip1.wav, clip3.wav; add"):
        open_trainer(base_model, folder)


def test_missing_folder_and_big_batch(base_model, tmp_path, clips):
    with pytest.raises(ValueError, match="does not exist"):
        open_trainer(base_model, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="batch_size 5 is larger than the dataset"):
        open_trainer(base_model, clips, batch_size=5)


def test_post_trained_model_is_refused(clips):
    model = StableAudioModel.from_pretrained(str(MODELS / "small-music"), device="cpu")
    with pytest.raises(ValueError, match="post-trained model .* needs a base model") as err:
        open_trainer(model, clips)
    assert one_sentence(str(err.value))


def test_resume_file_made_for_another_model_is_refused(base_model, clips, tmp_path):
    medium = StableAudioModel.from_pretrained(str(MODELS / "medium"), device="cpu")
    roots = {"model": medium.model.model, "conditioner": medium.model.conditioner}
    adapters = AdapterSet.attach(roots, AdapterConfig(rank=4), torch.Generator().manual_seed(0))
    save_lora_file(tmp_path / "medium.safetensors", adapters)
    with pytest.raises(ValueError, match="made for another model") as err:
        LoraTrainer(base_model, clips, resume_from=tmp_path / "medium.safetensors")
    assert one_sentence(str(err.value))
    assert not any(m for m in base_model.model.modules() if hasattr(m, "parametrizations"))


def test_out_of_memory_names_the_settings_that_lower_it(base_model, clips):
    trainer = open_trainer(base_model, clips, duration=1e9)  # a batch of 3.5 TB cannot be allocated
    try:
        with pytest.raises(
            ValueError, match="Out of memory on cpu at step 1; lower batch_size .*, duration"
        ) as err:
            trainer.train_step()
        assert one_sentence(str(err.value)) and trainer.step == 0
    finally:
        trainer.close()


def test_diverging_loss_is_an_error_not_a_result(base_model, clips):
    trainer = open_trainer(base_model, clips, duration=SHORT, learning_rate=1e30)
    try:
        with pytest.raises(ValueError, match="lower the learning rate"):
            for _ in range(3):
                trainer.train_step()
    finally:
        trainer.close()


def test_filters_that_match_nothing_and_bad_settings(base_model, clips):
    with pytest.raises(ValueError, match=r"write 'layers.\[0-3\].' for a range"):
        open_trainer(base_model, clips, adapter=AdapterConfig(include=["layers[0-1]"]))
    some = AdapterConfig(rank=2, include="layers.[1-1]., seconds_total")  # a comma-separated string works too
    only = open_trainer(base_model, clips, adapter=some)
    try:
        names = list(only.adapters.adapters)
        assert names and all("layers.1." in n or "seconds_total" in n for n in names)
    finally:
        only.close()
    for bad in (dict(rank=0), dict(adapter_type="qlora"), dict(alpha=-1), dict(dropout=1.0)):
        with pytest.raises(ValueError):
            AdapterConfig(**bad)
    for bad in (dict(steps=0), dict(learning_rate=math.nan), dict(base_precision="int8"), dict(duration=-1)):
        with pytest.raises(ValueError):
            TrainingSettings(**bad)
