"""The recorded upstream parity cases (``tests/fixtures/sa3-parity``), replayable on any device and dtype.

Shared by the parity tests and ``benchmarks/gpu_check.py``: :class:`Fixtures` reads a case (its JSON
and tensors) and the fixture inputs; :class:`CaseRunner` replays the ``generate`` and autoencoder
cases through the public API (``StableAudioModel`` / ``AutoencoderModel``) on a device, dtype and
attention-padding mode and returns the outputs it got. :func:`cpu_random` draws the engine's random
numbers on the CPU in float32 whatever the device and dtype, so a CUDA run sees the recorded noise
and a half-precision run sees float32's (its distance from float32 is then precision, not RNG).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch
from safetensors.torch import load_file
from torch.overrides import TorchFunctionMode

GENERATE = "generate"
AUTOENCODER_KINDS = ("autoencoder.encode", "autoencoder.decode", "autoencoder.roundtrip")
AUDIO_ARGS = ("init_audio", "inpaint_audio")
LORA_FILE = "lora/lora_a.safetensors"  # under models/; the strengths are those of each case's call
LORA_STRENGTHS = {"lora_strength_0": 0.0, "lora_strength_0p5": 0.5, "lora_strength_1": 1.0}
# a cheap case of each kind and model: text, audio-to-audio, inpainting, LoRA, medium, SAME-S/L
ONE_OF_EACH_KIND = (
    "t2a_1s",
    "a2a_noise0p7",
    "inpaint_one_region",
    "lora_strength_0p5",
    "medium_t2a",
    "ae_same_s_decode_chunked",
    "ae_same_l_encode",
    "ae_same_s_roundtrip",
)

# The lowest SNR (dB) a half-precision replay may have against the float32 one: by dtype, then by
# fixture model family (``small``: small-music and its base, ``medium``, ``autoencoder``: SAME-S/L
# cases) and output. Set from every replayable case on the CPU (see
# benchmarks/cpu_bfloat16_profile.md): the worst seen, less about 3 dB. bfloat16 keeps 8 mantissa
# bits, float16 11 (about 18 dB more). One network evaluation is ~30 dB (bfloat16) / ~45 dB
# (float16) from float32 in every model, but eight sampler steps of these tiny random-weight DiTs
# compound the difference, medium's most (bfloat16 at cfg 7: 1 dB after eight steps, 25 after one).
HALF_PRECISION_MIN_SNR_DB = {
    "bfloat16": {
        "small": {"output.latents": 10.0, "output.audio": 20.0},
        "medium": {"output.latents": -2.0, "output.audio": 10.0},
        "autoencoder": {"output.latents": 35.0, "output.audio": 35.0},
    },
    "float16": {
        "small": {"output.latents": 20.0, "output.audio": 35.0},
        "medium": {"output.latents": 4.0, "output.audio": 20.0},
        "autoencoder": {"output.latents": 50.0, "output.audio": 50.0},
    },
}


@dataclass
class Case:
    """One recorded upstream call: its JSON description and its tensors."""

    name: str
    meta: dict
    tensors: dict[str, torch.Tensor]

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    def outputs(self) -> list[str]:
        """The names of the recorded outputs (``output.*``)."""
        return sorted(k for k in self.tensors if k.startswith("output."))

    def atol(self, output: str) -> float:
        return self.meta["outputs"][output]["tolerance"]["atol"]

    @property
    def family(self) -> str:
        """``small``, ``medium`` or ``autoencoder``: the rows of :data:`HALF_PRECISION_MIN_SNR_DB`."""
        if self.kind != GENERATE:
            return "autoencoder"
        return "medium" if self.meta["model"] == "medium" else "small"

    def min_snr_db(self, output: str, dtype: torch.dtype) -> float:
        """The bound of :data:`HALF_PRECISION_MIN_SNR_DB` for ``output`` replayed in ``dtype``."""
        return HALF_PRECISION_MIN_SNR_DB[str(dtype).removeprefix("torch.")][self.family][output]

    def assert_output(self, output: str, actual: torch.Tensor) -> None:
        """Compare ``actual`` with the recorded output at the case's own tolerance."""
        torch.testing.assert_close(
            actual.detach().to("cpu", torch.float32), self.tensors[output], rtol=0, atol=self.atol(output)
        )


class Fixtures:
    """A parity fixture folder: ``cases/``, ``models/`` and ``inputs/``."""

    def __init__(self, root):
        self.root = Path(root)
        self.models = self.root / "models"
        self.inputs = self.root / "inputs"

    def case(self, name: str) -> Case:
        meta = json.loads((self.root / "cases" / f"{name}.json").read_text())
        return Case(name, meta, load_file(str(self.root / "cases" / f"{name}.safetensors")))

    def names(self, prefix: str = "", kinds: tuple[str, ...] | None = None) -> list[str]:
        """Case names starting with ``prefix``, of the given kinds (all kinds by default)."""
        names = sorted(p.stem for p in (self.root / "cases").glob(f"{prefix}*.json"))
        if kinds is None:
            return names
        return [
            n for n in names if json.loads((self.root / "cases" / f"{n}.json").read_text())["kind"] in kinds
        ]

    def replayable(self) -> list[str]:
        """Every case :class:`CaseRunner` replays: the generate and autoencoder cases."""
        return self.names(kinds=(GENERATE, *AUTOENCODER_KINDS))

    def clip(self, relative: str) -> tuple[int, torch.Tensor]:
        """``(rate, (channels, samples) float32)`` of a WAV file under the fixture folder."""
        data, rate = sf.read(str(self.root / relative), dtype="float32", always_2d=True)
        return rate, torch.from_numpy(data.T.copy())

    def input_audio(self, clip: str) -> torch.Tensor:
        """(channels, samples) float32 of ``inputs/<clip>.safetensors``."""
        return load_file(str(self.inputs / f"{clip}.safetensors"))["audio"]


class _CpuRandom(TorchFunctionMode):
    """Gaussian draws (``torch.randn``, ``randn_like``, ``Tensor.normal_``) made on the CPU in
    float32, then moved and cast. A generator of another device is replaced by a CPU generator with
    its seed (made on first use, so it must be fresh: the engine makes one per generation)."""

    def __init__(self):
        super().__init__()
        self._cpu_generators: dict[torch.Generator, torch.Generator] = {}

    def _on_cpu(self, generator: torch.Generator | None) -> torch.Generator | None:
        if generator is None or generator.device.type == "cpu":
            return generator
        if generator not in self._cpu_generators:
            self._cpu_generators[generator] = torch.Generator("cpu").manual_seed(generator.initial_seed())
        return self._cpu_generators[generator]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.randn:
            device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
            kwargs["generator"] = self._on_cpu(kwargs.get("generator"))
            drawn = func(*args, **kwargs, device="cpu", dtype=torch.float32)
            return drawn.to(device=device, dtype=dtype or torch.get_default_dtype())
        if func in (torch.randn_like, torch.Tensor.normal_):
            target = args[0]  # filled in memory order, so the CPU copy keeps its strides
            cpu = torch.empty_strided(target.shape, target.stride(), dtype=torch.float32)
            if func is torch.randn_like:
                return func(cpu).to(device=target.device, dtype=kwargs.get("dtype") or target.dtype)
            kwargs["generator"] = self._on_cpu(kwargs.get("generator"))
            return target.copy_(func(cpu, *args[1:], **kwargs))
        return func(*args, **kwargs)


@contextlib.contextmanager
def cpu_random():
    """Within this block the engine's random draws come from CPU generators, in float32.

    On the CPU in float32 this changes nothing (the same generators, the same numbers); on a GPU
    the draws equal the CPU's (a CUDA generator with the same seed gives another stream), and in
    half precision they are float32's rounded (a half-precision draw gives other numbers).
    """
    with _CpuRandom():
        yield


class CaseRunner:
    """Replays cases on ``device`` in ``dtype`` with ``attention_padding``; models load once each.

    The fixtures were recorded on upstream's CPU attention path, hence the default
    ``attention_padding="upstream_fallback"``.
    """

    def __init__(
        self,
        fixtures: Fixtures,
        *,
        device="cpu",
        dtype: torch.dtype = torch.float32,
        attention_padding: str = "upstream_fallback",
    ):
        self.fixtures = fixtures
        self.device = torch.device(device)
        self.dtype = dtype
        self.attention_padding = attention_padding
        self._models: dict[str, object] = {}

    def model(self, name: str):
        """The fixture text-to-audio model ``name`` (``small-music``, ``medium``, ...)."""
        if name not in self._models:
            from stable_audio_3 import StableAudioModel

            self._models[name] = StableAudioModel.from_pretrained(
                str(self.fixtures.models / name),
                device=self.device,
                dtype=self.dtype,
                attention_padding=self.attention_padding,
            )
        return self._models[name]

    def autoencoder(self, name: str):
        """The fixture autoencoder ``same-s`` or ``same-l``."""
        key = f"autoencoder:{name}"
        if key not in self._models:
            from stable_audio_3 import AutoencoderModel

            self._models[key] = AutoencoderModel.from_pretrained(
                self.fixtures.models / name, device=self.device, dtype=self.dtype
            )
        return self._models[key]

    def generate_kwargs(self, case: Case) -> dict:
        """The case's ``generate`` arguments, audio files read as ``(rate, tensor)``."""
        kwargs = dict(case.meta["args"])
        for name in AUDIO_ARGS:
            if name in kwargs:
                kwargs[name] = self.fixtures.clip(kwargs[name])
        if kwargs.get("sampler_type") == "rk4":
            kwargs["rk4_upstream_compat"] = True  # upstream rk4 bug: docs/engine-and-upstream.md
        return kwargs

    def run(self, case: Case) -> dict[str, torch.Tensor]:
        """The case's outputs by name, as this engine returns them (on the device, float32)."""
        if case.kind == GENERATE:
            return self._generate(case)
        if case.kind in AUTOENCODER_KINDS:
            return self._autoencoder(case)
        raise ValueError(
            f"Case {case.name} is a {case.kind!r} case; only generate and autoencoder cases replay."
        )

    def _generate(self, case: Case) -> dict[str, torch.Tensor]:
        model = self.model(case.meta["model"])
        kwargs = self.generate_kwargs(case)
        if case.name in LORA_STRENGTHS:
            model.load_lora([self.fixtures.models / LORA_FILE])
            model.set_lora_strength(LORA_STRENGTHS[case.name])
        try:
            out = {"output.latents": model.generate(**kwargs, return_latents=True, disable_tqdm=True)}
            if "output.audio" in case.tensors:
                out["output.audio"] = model.generate(**kwargs, disable_tqdm=True)
        finally:
            model.unload_lora()
        return out

    def _autoencoder(self, case: Case) -> dict[str, torch.Tensor]:
        args = case.meta["args"]
        model = self.autoencoder(case.meta["model"])
        chunking = {k: args[k] for k in ("chunked", "chunk_size", "overlap") if k in args}
        if case.kind == "autoencoder.encode":
            clip = self.fixtures.input_audio(Path(args["audio"]).stem)
            return {"output.latents": model.encode(clip, args["sr"], **chunking)}
        if case.kind == "autoencoder.decode":
            torch.manual_seed(args["rng_seed_before_call"])
            return {"output.audio": model.decode(case.tensors["input.latents"], **chunking)}
        latents = model.encode(self.fixtures.input_audio(Path(args["audio"]).stem), args["sr"])
        torch.manual_seed(args["rng_seed_before_decode"])
        return {"output.audio": model.decode(latents)}
