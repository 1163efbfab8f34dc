"""One command for a GPU: environment, fidelity, speed and memory, and the lab's model cache.

    python benchmarks/gpu_check.py                       # on a CUDA machine (under 8 minutes on one H200)
    python benchmarks/gpu_check.py --device cpu --quick  # the CPU fallback CI runs (tiny fixtures)

Needs only the repository and ``pip install -e .`` (no test extras, no Hugging Face Hub: everything
is local, ``HF_HUB_OFFLINE=1``). Prints one report as it goes and writes it as JSON
(``benchmarks/results/gpu_check_<device>[_quick].json`` or ``--json``). Sections:

* environment: device, torch / CUDA / cuDNN versions, compute capability, the dtypes the lab's
  policy picks (``sa3lab.device.choose``).
* fidelity: every generate and autoencoder parity case (``tests/fixtures/sa3-parity``; ``--quick``:
  one of each kind) on the device in float32 (TF32 off) against the CPU goldens, max error against
  the case's tolerance; ``attention_padding="exclude"`` on the CPU against the device, within the
  same tolerance; bfloat16 and float16 on the device against its float32 run: SNR in dB against
  ``HALF_PRECISION_MIN_SNR_DB`` (``stable_audio_3.parity``) and finite. Random numbers are
  drawn on the CPU in float32 (``parity.cpu_random``) so every run sees the recorded noise.
* speed: the released sizes with random weights (built once under ``benchmarks/results/models``,
  as ``bench_generate.py`` does; ``--quick``: the tiny fixture models, short clips): load time,
  seconds per stage, real-time factor (generation seconds per second of audio) and peak device
  memory, in bfloat16 and float16, chunked decoding on and off.
* cache: ``sa3lab.lab.Lab`` with its one-model cache runs medium, then small-music: medium is
  evicted and its memory given back (``torch.cuda.memory_allocated`` before and after).
* speed with ``compile=True``, last (not in ``--quick``): the same runs in the policy's dtype (both
  with ``--compile-all-dtypes``), the first generation's compile time beside; a row that would end
  after ``--budget-s`` is skipped and says so.

Exit status: 0 when every check passes, 1 when one fails, 2 when the device is not available.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the Hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from bench_generate import PROMPT, ensure_model  # noqa: E402  (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "sa3-parity"
RESULTS = Path(__file__).parent / "results"
STEPS = 8

HALF_DTYPES = (torch.bfloat16, torch.float16)
SPEED_RUNS = (("small-music", 30.0), ("small-music", 120.0), ("medium", 120.0))
QUICK_SPEED_RUNS = (("small-music", 5.0), ("medium", 5.0))
COMPILE_ESTIMATE_S = 150  # a compile=True row (compile + two generations), for the time budget


# --------------------------------------------------------------------------- report


class Report:
    """The printed report and its JSON, built section by section."""

    def __init__(self):
        self.data: dict = {"failures": []}
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def section(self, title: str) -> None:
        print(f"\n== {title} ({self.elapsed():.0f} s)", flush=True)

    def line(self, text: str) -> None:
        print(text, flush=True)

    def fail(self, what: str) -> None:
        self.data["failures"].append(what)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- environment


def environment(device: torch.device, report: Report) -> None:
    from sa3lab import device as policy

    report.section("environment")
    machine = policy.probe()
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "cudnn": torch.backends.cudnn.version(),
        }
    else:
        info |= {"name": _cpu_name(), "cpu_bf16_matrix_unit": machine.cpu_bf16_matrix_unit}
    if device.type == "cpu":
        machine = replace(machine, cuda=False, mps=False)
    chosen = policy.choose(machine)
    info["policy"] = {
        "device": chosen.device,
        "dit_dtype": _dtype_name(chosen.dit_dtype),
        "autoencoder_dtype": _dtype_name(chosen.autoencoder_dtype),
        "reason": chosen.reason,
    }
    fast = policy.cpu_fast_mode(machine) if device.type == "cpu" else None
    info["cpu_fast_mode"] = None if fast is None else fast.reason
    report.data["environment"] = info
    for key, value in info.items():
        report.line(f"{key:>20}: {value}")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True)
    except OSError:
        return None
    return out.stdout.decode().strip() or None


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- fidelity


@contextlib.contextmanager
def exact_float32(device: torch.device):
    """TF32 off for CUDA matmuls and convolutions (the goldens are IEEE float32)."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def max_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().to("cpu", torch.float32), expected.detach().to("cpu", torch.float32)
    return float((actual - expected).abs().max())


def fidelity(device: torch.device, quick: bool, report: Report) -> None:
    from sa3lab.metrics import snr_db
    from stable_audio_3.parity import (
        GENERATE,
        HALF_PRECISION_MIN_SNR_DB,
        ONE_OF_EACH_KIND,
        CaseRunner,
        Fixtures,
        cpu_random,
    )

    fixtures = Fixtures(FIXTURES)
    names = list(ONE_OF_EACH_KIND) if quick else fixtures.replayable()
    report.section(f"fidelity on {device}: {len(names)} parity cases")
    golden = CaseRunner(fixtures, device=device)  # upstream_fallback, as recorded
    cpu_exclude = CaseRunner(fixtures, device="cpu", attention_padding="exclude")
    device_exclude = CaseRunner(fixtures, device=device, attention_padding="exclude")
    halves = {
        d: CaseRunner(fixtures, device=device, dtype=d, attention_padding="exclude") for d in HALF_DTYPES
    }
    report.line(
        f"{'case':<28} {'output':<15} {'f32 max|err|':>12} {'atol':>8} {'exclude cpu-dev':>15}"
        + "".join(f" {_dtype_name(d) + ' SNR dB (min)':>20}" for d in HALF_DTYPES)
        + "  ok"
    )
    rows = []
    for name in names:
        case = fixtures.case(name)
        padding_matters = case.kind == GENERATE  # only the DiT attends over padded latents
        with cpu_random(), exact_float32(device):
            recorded = golden.run(case)
            on_cpu = cpu_exclude.run(case) if padding_matters else None
            reference = device_exclude.run(case) if padding_matters else recorded
        with cpu_random():
            half = {dtype: runner.run(case) for dtype, runner in halves.items()}
        for output in case.outputs():
            row = {"case": name, "kind": case.kind, "output": output, "atol": case.atol(output)}
            row["float32_max_error"] = max_error(recorded[output], case.tensors[output])
            checks = [row["float32_max_error"] <= row["atol"]]
            if padding_matters:
                row["exclude_cpu_vs_device_max_error"] = max_error(reference[output], on_cpu[output])
                checks.append(row["exclude_cpu_vs_device_max_error"] <= row["atol"])
            cells = []
            for dtype in HALF_DTYPES:
                got = half[dtype][output]
                finite = bool(torch.isfinite(got).all())
                snr = snr_db(_flat(reference[output]), _flat(got)) if finite else float("-inf")
                bound = case.min_snr_db(output, dtype)
                row[_dtype_name(dtype)] = {"snr_db": snr, "min_snr_db": bound, "finite": finite}
                checks.append(finite and snr >= bound)
                cells.append(f" {snr:>12.1f} ({bound:>4g})" + ("" if finite else " NaN/inf"))
            row["ok"] = all(checks)
            rows.append(row)
            excl = row.get("exclude_cpu_vs_device_max_error")
            report.line(
                f"{name:<28} {output:<15} {row['float32_max_error']:>12.2e} {row['atol']:>8.1e} "
                + (f"{excl:>15.2e}" if excl is not None else f"{'-':>15}")
                + "".join(cells)
                + f"  {'ok' if row['ok'] else 'FAIL'}"
            )
            if not row["ok"]:
                report.fail(f"fidelity {name} {output}")
    report.data["fidelity"] = {"tf32": False, "min_snr_db": HALF_PRECISION_MIN_SNR_DB, "cases": rows}
    del golden, cpu_exclude, device_exclude, halves
    _free(device)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(…, samples) as (rows, samples) float32 on the CPU, for :func:`sa3lab.metrics.snr_db`."""
    return x.detach().to("cpu", torch.float32).reshape(-1, x.shape[-1])


# --------------------------------------------------------------------------- speed and memory


def _load(folder: Path, device: torch.device, dtype: torch.dtype, compile: bool = False):
    from stable_audio_3 import StableAudioModel

    t0 = time.perf_counter()
    with warnings_quiet():
        model = StableAudioModel.from_pretrained(str(folder), device=device, dtype=dtype, compile=compile)
    _sync(device)
    return model, time.perf_counter() - t0


@contextlib.contextmanager
def warnings_quiet():
    """The CPU and medium-size warnings are expected here."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _generate(model, device: torch.device, duration: float, chunked: bool) -> dict:
    """One timed generation: seconds per stage, total, real-time factor and peak device memory."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    audio = model.generate(
        PROMPT, duration=duration, steps=STEPS, seed=1, chunked_decode=chunked, disable_tqdm=True
    )
    _sync(device)
    total = time.perf_counter() - t0
    out = {f"{stage}_s": seconds for stage, seconds in model.last_timings.items()}
    out |= {"total_s": total, "rtf": total / duration, "finite": bool(torch.isfinite(audio).all())}
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def speed(device: torch.device, quick: bool, dtypes: tuple, compile: bool, budget_s: float, report: Report):
    """Timed generations of each of :data:`SPEED_RUNS` in each of ``dtypes``, compiled or not."""
    sizes = "tiny fixture models" if quick else "released sizes, random weights"
    report.section(
        f"speed and memory, compile={compile} ({sizes}, {STEPS} steps; rtf = generation s / audio s)"
    )
    report.line(
        f"{'model':<12} {'audio s':>7} {'dtype':<9} {'decode':<8} {'compile':<8} {'load s':>7} "
        f"{'text':>6} {'sampling':>8} {'decoding':>8} {'total':>7} {'rtf':>7} {'peak GiB':>8}"
    )
    rows = report.data.setdefault("speed", {"steps": STEPS, "prompt": PROMPT, "rows": []})["rows"]
    runs = QUICK_SPEED_RUNS if quick else SPEED_RUNS
    for (name, duration), dtype in itertools.product(runs, dtypes):
        if compile and report.elapsed() + COMPILE_ESTIMATE_S > budget_s:
            rows.append(
                {
                    "model": name,
                    "duration_s": duration,
                    "dtype": _dtype_name(dtype),
                    "compile": True,
                    "skipped": f"over the {budget_s:.0f} s budget",
                }
            )
            report.line(
                f"{name:<12} {duration:>7g} {_dtype_name(dtype):<9} {'chunked':<8} {'on':<8} skipped: "
                f"over the {budget_s:.0f} s budget"
            )
            continue
        folder = FIXTURES / "models" / name if quick else ensure_model(name)
        model, load_s = _load(folder, device, dtype, compile=compile)
        first = _generate(model, device, duration if compile else min(duration, 5.0), chunked=True)
        decodes = (True,) if compile else (True, False)
        for chunked in decodes:
            fig = _generate(model, device, duration, chunked)
            row = {
                "model": name,
                "duration_s": duration,
                "dtype": _dtype_name(dtype),
                "compile": compile,
                "chunked_decode": chunked,
                "load_s": load_s,
                "first_generation_s": first["total_s"],
                "weights_gib": _weights_gib(model),
                **fig,
            }
            rows.append(row)
            report.line(
                f"{name:<12} {duration:>7g} {row['dtype']:<9} {'chunked' if chunked else 'plain':<8} "
                f"{'on' if compile else 'off':<8} {load_s:>7.2f} {fig.get('text_encoding_s', 0):>6.2f} "
                f"{fig['sampling_s']:>8.2f} {fig['decoding_s']:>8.2f} {fig['total_s']:>7.2f} "
                f"{fig['rtf']:>7.3f} "
                + (f"{fig['peak_gib']:>8.2f}" if "peak_gib" in fig else f"{'-':>8}")
                + ("" if not compile else f"   (first generation, compiling: {first['total_s']:.1f} s)")
            )
            if not fig["finite"]:
                report.fail(f"speed {name} {duration:g} s {row['dtype']}: non-finite audio")
        del model
        _free(device)


def _weights_gib(model) -> float:
    tensors = [*model.model.parameters(), *model.model.buffers()]
    for encoder in model.model.conditioner.text_encoders():
        tensors += list(encoder.model.parameters())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**30


# --------------------------------------------------------------------------- the lab's cache


def cache(device: torch.device, quick: bool, report: Report) -> None:
    """Lab with a one-model cache: running small-music after medium evicts medium and frees it."""
    from sa3lab.cache import ModelCache
    from sa3lab.device import probe
    from sa3lab.generation import GenerationRequest
    from sa3lab.lab import Lab

    report.section("the lab's model cache (sa3lab.lab.Lab, one model)")
    machine = probe() if device.type == "cuda" else replace(probe(), cuda=False, mps=False)
    lab = Lab(cache=ModelCache(max_models=1), machine=machine)
    folders = {n: FIXTURES / "models" / n if quick else ensure_model(n) for n in ("medium", "small-music")}
    allocated, weights, refs = {}, {}, {}
    with tempfile.TemporaryDirectory() as out, warnings_quiet():
        for name, folder in folders.items():
            request = GenerationRequest(
                model=str(folder), prompt=PROMPT, duration=2.0, steps=2, seed=1, output_dir=out
            )
            result = lab.generate(request)
            (key,) = lab.cache.keys()
            model, _, _ = lab.cache.get(key, build=None)  # a hit: nothing is built
            weights[name], refs[name] = _weights_gib(model), weakref.ref(model)
            del model
            gc.collect()
            allocated[name] = torch.cuda.memory_allocated(device) / 2**30 if device.type == "cuda" else None
            report.line(
                f"ran {name} on {result.device} in {result.dtype}: weights {weights[name]:.2f} GiB"
                + ("" if allocated[name] is None else f", allocated {allocated[name]:.2f} GiB")
            )
    evicted = refs["medium"]() is None
    row = {"medium_evicted_and_collected": evicted, "weights_gib": weights, "allocated_gib": allocated}
    ok = evicted
    if device.type == "cuda":
        row["freed_gib"] = allocated["medium"] - allocated["small-music"]
        # what must go back: medium's weights less small-music's (a little slack for allocator rounding)
        ok = ok and row["freed_gib"] >= 0.9 * (weights["medium"] - weights["small-music"])
        report.line(
            f"memory allocated: {allocated['medium']:.2f} GiB with medium, {allocated['small-music']:.2f} "
            f"GiB after small-music replaced it: {row['freed_gib']:.2f} GiB freed"
        )
    report.line(f"medium evicted and collected: {evicted}  ->  {'ok' if ok else 'FAIL'}")
    row["ok"] = ok
    if not ok:
        report.fail("cache: medium was not freed")
    report.data["cache"] = row


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument(
        "--quick", action="store_true", help="tiny fixtures, one case per kind, no compile rows"
    )
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON report")
    parser.add_argument(
        "--compile-all-dtypes",
        action="store_true",
        help="compile=True rows in bfloat16 and float16 (default: the policy's dtype only)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=470.0,
        help="skip compile rows that would end after this many seconds (default 470)",
    )
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        print(f"gpu_check: {args.device!r} is not a device; use cuda, cuda:N or cpu.", file=sys.stderr)
        return 2
    if device.type == "cuda" and not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(
            f"gpu_check: CUDA is not available here (torch {torch.__version__}, {build}, no usable GPU); "
            "run it on a machine with an NVIDIA GPU, or use --device cpu --quick for the CPU fallback.",
            file=sys.stderr,
        )
        return 2
    if device.type not in ("cuda", "cpu"):
        print(f"gpu_check: {device.type} is not supported here; use cuda, cuda:N or cpu.", file=sys.stderr)
        return 2
    report = Report()
    report.line(f"sa3lab device check on {device}{' (quick)' if args.quick else ''}")
    environment(device, report)
    policy_dtype = getattr(torch, report.data["environment"]["policy"]["dit_dtype"])
    compile_dtypes = (
        HALF_DTYPES if args.compile_all_dtypes else (policy_dtype,) if policy_dtype in HALF_DTYPES else ()
    )
    fidelity(device, args.quick, report)
    speed(device, args.quick, HALF_DTYPES, False, args.budget_s, report)
    cache(device, args.quick, report)
    if not args.quick:  # last: compiling is what may not fit the budget
        speed(device, args.quick, compile_dtypes, True, args.budget_s, report)
    report.data["elapsed_s"] = report.elapsed()
    failures = report.data["failures"]
    report.section("summary")
    report.line(
        "every check passed" if not failures else f"{len(failures)} check(s) failed: " + "; ".join(failures)
    )
    path = args.json or RESULTS / f"gpu_check_{device.type}{'_quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.data, indent=2, default=str))
    report.line(f"wrote {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
