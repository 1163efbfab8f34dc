"""Sweeps: prompts x seeds x settings with the demo model, checked up front, resumable, local and on Ray.

The sweep form: tests/forms/test_sweep_form.py; the sweep notebook: tests/notebooks/test_notebooks.py.
"""

import ipaddress
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import soundfile as sf
import torch
from parity import MODELS
from sweep_helpers import NO_RAY, PROMPTS, StopAfter, manifest

from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab
from sa3lab.run_core import RunCore
from sa3lab.sweep_plan import SweepRequest


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the demo model needs no network


@pytest.fixture(scope="module")
def lab():
    return Lab()


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs, started as a sweep starts it, for this module's Ray tests (skipped where
    ray is not installed)."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    from sa3lab.sweep_ray import connect

    connect(num_cpus=2)
    yield ray
    ray.shutdown()


def sweep(folder: Path, **kw) -> SweepRequest:
    return SweepRequest(
        model="demo", prompts=PROMPTS, seeds=[1, 2], duration=1.0, output_dir=str(folder), **kw
    )


def samples(folder: Path) -> dict[str, bytes]:
    """Each WAV's audio samples as bytes, by file name (a float WAV's PEAK chunk holds a timestamp)."""
    return {p.name: sf.read(str(p), dtype="float32")[0].tobytes() for p in sorted(folder.glob("*.wav"))}


@pytest.fixture(scope="module")
def local_sweep(lab, tmp_path_factory):
    """The 3 prompts x 2 seeds sweep run locally in batches of 4 (a batch of 4, then one of 2)."""
    folder = tmp_path_factory.mktemp("local")
    return folder, lab.sweep(sweep(folder, max_batch=4))


def test_a_sweep_of_3_prompts_x_2_seeds_makes_6_files_and_a_manifest(local_sweep, lab, tmp_path):
    folder, result = local_sweep
    assert len(list(folder.glob("*.wav"))) == 6 and len(list(folder.glob("*.json"))) == 6
    records = manifest(folder)
    assert len(records) == 6 and {r["status"] for r in records} == {"done"}
    assert {(r["prompt"], r["seed"]) for r in records} == {(p, s) for p in PROMPTS for s in (1, 2)}
    assert len({r["id"] for r in records}) == 6 and all((folder / r["file"]).is_file() for r in records)
    assert all(r["settings"]["steps"] == 8 and r["seconds"] > 0 for r in records)
    assert result.progress.done == 6 and not result.failed()
    # each item is what its own single generation gives: its sidecar's request, run alone
    record = records[-1]
    sidecar = json.loads((folder / record["file"]).with_suffix(".json").read_text())
    alone = GenerationRequest.from_record(sidecar)
    alone.output_dir = str(tmp_path)
    single = lab.generate(alone)
    assert sidecar["settings"]["batch_size"] == 2 and single.seed == record["seed"]
    assert (
        single.audio[0].T.numpy().tobytes()
        == sf.read(str(folder / record["file"]), dtype="float32")[0].tobytes()
    )


def test_an_interrupted_sweep_resumes_without_redoing_finished_items(lab, local_sweep, tmp_path):
    request = sweep(tmp_path, max_batch=2)
    with pytest.raises(KeyboardInterrupt):
        lab.sweep(request, progress=StopAfter(2))
    first = manifest(tmp_path)
    assert len(first) == 2 and len(list(tmp_path.glob("*.wav"))) == 2
    written = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.wav")}
    result = lab.sweep(request)
    assert result.progress.skipped == 2 and result.progress.done == 4
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.wav") if p.name in written} == written
    records = manifest(tmp_path)
    assert len(records) == 6 and len({r["id"] for r in records}) == 6  # none redone, none lost
    assert samples(tmp_path) == samples(local_sweep[0])  # other batches, same audio
    again = lab.sweep(request)
    assert again.progress.skipped == 6 and len(manifest(tmp_path)) == 6


class SmallDevice:
    """The demo model on a device with room for ``room`` items: a larger batch runs out of memory.

    (Running out of memory for real would take the test machine with it; the rest is the real model.)
    """

    def __init__(self, model, room: int):
        self.model, self.room = model, room

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, **kwargs):
        if kwargs["batch_size"] > self.room:
            raise torch.OutOfMemoryError(f"out of memory: room for {self.room} item(s)")
        return self.model.generate(**kwargs)


class SmallDeviceCore(RunCore):
    def __init__(self, room: int):
        super().__init__()
        self.room = room

    def load_generator(self, model, entry, token):
        loaded, cache_hit, load_s = super().load_generator(model, entry, token)
        return SmallDevice(loaded, self.room), cache_hit, load_s


def SmallDeviceLab(room: int) -> Lab:  # noqa: N802 - reads as the lab it makes
    lab = Lab()
    lab.core = SmallDeviceCore(room)
    return lab


def test_a_failed_batch_is_retried_item_by_item_and_failures_are_recorded_then_redone(local_sweep, tmp_path):
    retried = SmallDeviceLab(room=1).sweep(sweep(tmp_path / "retried", max_batch=3))
    assert not retried.failed() and {r["attempts"] for r in retried.records} == {2}
    assert samples(tmp_path / "retried") == samples(local_sweep[0])
    failing = sweep(tmp_path / "failing", max_batch=3)
    result = SmallDeviceLab(room=0).sweep(failing)
    assert len(result.failed()) == 6 and result.progress.failed == 6
    assert all(
        r["error"].startswith("out of memory: room for 0 item(s) (first try: ") for r in result.records
    )
    assert not list((tmp_path / "failing").glob("*.wav"))
    again = Lab().sweep(failing)  # the next run tries the failed items again
    assert again.progress.done == 6 and not again.failed()
    assert (
        samples(tmp_path / "failing") == samples(local_sweep[0]) and len(manifest(tmp_path / "failing")) == 12
    )


def test_every_problem_gets_its_own_sentence_before_anything_runs(tmp_path):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,duration\nrain,2\nthunder,long\n")
    request = SweepRequest(model="demo", prompts=str(prompts), seeds=[1], output_dir=str(tmp_path / "out"))
    assert request.problems() == ["Line 3 of prompts.csv: the duration 'long' is not a number of seconds."]
    rows = ["rain,2", ",3", "wind,x", "hail,2,y"] + [f"drop {n},z{n}" for n in range(12)]
    prompts.write_text("prompt,duration,seed\n" + "\n".join(rows) + "\n")
    every_line = SweepRequest(model="demo", prompts=str(prompts), seeds=[1]).problems()
    assert every_line[:3] == [
        "Line 3 of prompts.csv has no prompt; write one or delete the line.",
        "Line 4 of prompts.csv: the duration 'x' is not a number of seconds.",
        "Line 5 of prompts.csv: the seed 'y' is not a whole number.",
    ]
    assert len(every_line) == 11 and every_line[-1] == "... and 5 more lines with problems."
    request = SweepRequest(
        model="demo", prompts=["rain", " "], seeds=[1], grid={"steps": [8, 0]}, duration=99.0, backend="dask"
    )
    problems = request.problems()
    assert problems[0] == "The backend must be local or ray; got the text 'dask'."
    assert any("Steps must be a whole number from 1 to 1000; got 0." in p for p in problems)
    assert any("at most 10 s for demo" in p for p in problems)
    assert any(p.startswith("Enter a prompt") for p in problems)
    with pytest.raises(ValueError) as caught:
        request.check()
    assert str(caught.value) == " ".join(problems)
    (grid,) = SweepRequest(model="demo", prompts=["a"], grid={"output_dir": ["x"]}).problems()
    assert grid.startswith("The grid can vary model, duration, negative_prompt, steps, cfg_scale, sampler, ")
    assert grid.endswith("; not output_dir.")
    assert SweepRequest(model="demo", prompts=["a"], grid={"sampler": ["dpm"]}).problems() == [
        "The sampler must be one of pingpong, euler, dpmpp, rk4; got the text 'dpm'."
    ]
    (setting,) = SweepRequest(model="demo", prompts=["a"], settings={"steps": 4}).problems()
    assert setting.endswith(
        "(set model, duration, negative_prompt, steps, cfg_scale with the sweep's own fields); not steps."
    )
    assert "from 1 to 1000" in SweepRequest(model="demo", prompts=["a"], seeds=0).problems()[0]
    every_prompt = SweepRequest(model="demo", prompts=PROMPTS, steps=0, seeds=[1, -1])
    assert every_prompt.problems() == [
        "A sweep's seeds must be 0 or more, so that it can resume; for random seeds give their number "
        "instead (seeds=8).",
        "Steps must be a whole number from 1 to 1000; got 0.",  # once, for every prompt has it
    ]
    one_row = SweepRequest(model="demo", prompts=["rain", {"prompt": "wind", "duration": 60}], duration=1)
    assert one_row.problems() == ["“wind”: Duration must be more than 0 and at most 10 s for demo; got 60 s."]
    assert not (tmp_path / "out").exists()


def test_counts_and_estimate_cover_prompts_seeds_and_the_grid(lab, tmp_path):
    request = SweepRequest(
        model="demo", prompts=PROMPTS, seeds=[1, 2], grid={"steps": [4, 8], "cfg_scale": [1, 3]}, duration=1.0
    )
    estimate = request.estimate(lab.machine)
    assert (estimate.items, estimate.prompts, estimate.seeds, estimate.settings) == (24, 3, 2, 4)
    assert estimate.sentence().startswith("24 items (3 prompts x 2 seeds x 4 settings); about ")
    small = SweepRequest(model="small-music", prompts=PROMPTS, seeds=[1, 2], duration=30.0)
    per_item_on_2_threads = small.estimate(lab.machine).seconds / 6 * torch.get_num_threads() / 2
    assert 15 < per_item_on_2_threads < 30  # docs/performance.md: 21.2 s for 30 s of audio


def test_the_estimate_counts_every_stage_a_run_times_and_is_near_a_measured_run(tmp_path):
    """Issue 24: estimates ran 3-12x low (no load, no text encoder, no decoding, no per-step cost of a
    small model). The estimate now has the stages a run's record times, plus the load of a model
    that is not in the cache; a demo sweep's items take about what it says (a generous factor)."""
    import time

    lab = Lab()  # nothing loaded yet
    request = SweepRequest(
        model="demo", prompts=PROMPTS, seeds=[1, 2], duration=1.0, output_dir=str(tmp_path)
    )
    cold = request.estimate(lab.machine)
    warm = request.estimate(lab.machine, loaded={"demo"})
    assert cold.stages["load"] > 0 and warm.stages["load"] == 0
    assert cold.seconds == pytest.approx(warm.seconds + cold.stages["load"])
    assert "loading the model included" in cold.sentence() and "loading" not in warm.sentence()
    longer = SweepRequest(model="demo", prompts=PROMPTS, seeds=[1, 2], duration=5.0).estimate(lab.machine)
    assert longer.stages["decoding"] > cold.stages["decoding"]
    guided = SweepRequest(model="demo", prompts=PROMPTS, seeds=[1, 2], duration=1.0, cfg_scale=3.0)
    assert guided.estimate(lab.machine).stages["sampling"] > 1.9 * cold.stages["sampling"]
    start = time.perf_counter()
    result = lab.sweep(request)
    wall = time.perf_counter() - start
    loads = []
    for record in result.records:
        sidecar = json.loads((tmp_path / record["file"]).with_suffix(".json").read_text())
        timed = {k for k, v in sidecar["timings"].items() if v > 0.001 and k not in ("total", "access_check")}
        assert timed <= set(cold.stages), timed - set(cold.stages)
        loads.append(sidecar["timings"].get("load", 0.0))
    assert all(seconds > 0 for seconds in cold.stages.values())
    # the items' own work, without the load (whose estimate includes a process's first warm-up, which
    # this test process may have had already)
    work = wall - max(loads)
    assert work / 6 < warm.seconds < work * 6, (warm.stages, wall, loads)


def test_prompt_files_give_per_row_duration_negative_prompt_and_seed(tmp_path):
    csv_file = tmp_path / "pack.csv"
    csv_file.write_text("prompt,duration,negative_prompt,seed\nkick,0.5,,\nsnare,,noise,9\n")
    items = SweepRequest(model="demo", prompts=str(csv_file), seeds=[1, 2], duration=2.0).items()
    assert [(i.prompt, i.duration, i.negative_prompt, i.seed) for i in items] == [
        ("kick", 0.5, "", 1),
        ("kick", 0.5, "", 2),
        ("snare", 2.0, "noise", 9),
    ]
    text_file = tmp_path / "prompts.txt"
    text_file.write_text("# a pack\nrain\n\nwind\n")
    assert [i.prompt for i in SweepRequest(model="demo", prompts=str(text_file)).items()] == ["rain", "wind"]


def test_random_seeds_are_drawn_from_the_definition_so_a_sweep_resumes():
    first = SweepRequest(model="demo", prompts=PROMPTS, seeds=4, output_dir="a")
    again = SweepRequest(model="demo", prompts=PROMPTS, seeds=4, output_dir="b", backend="ray", max_batch=2)
    other = SweepRequest(model="demo", prompts=PROMPTS[:2], seeds=4)
    assert first.seed_list() == again.seed_list() and len(set(first.seed_list())) == 4
    assert other.seed_list() != first.seed_list()


# ---------------------------------------------------------------------------------------------- Ray


def test_ray_with_2_local_actors_makes_the_files_of_local(ray_cluster, lab, local_sweep, tmp_path):
    result = lab.sweep(sweep(tmp_path, backend="ray", workers=2))
    assert result.progress.done == 6 and not result.failed()
    assert samples(tmp_path) == samples(local_sweep[0])
    assert {r["id"] for r in manifest(tmp_path)} == {r["id"] for r in manifest(local_sweep[0])}


class KillAWorker:
    """On the sweep's progress: once an item is done, SIGKILL a Ray worker that is generating."""

    def __init__(self):
        self.killed = None

    def __call__(self, counts):
        if self.killed is not None or counts.done < 1 or counts.running < 1:
            return
        for process in psutil.process_iter(["pid", "cmdline"]):
            if "SweepWorker.generate" in " ".join(process.info["cmdline"] or []):
                os.kill(process.info["pid"], signal.SIGKILL)
                self.killed = process.info["pid"]
                return


def test_killing_an_actor_mid_sweep_loses_no_item(ray_cluster, lab, local_sweep, tmp_path):
    kill = KillAWorker()
    result = lab.sweep(sweep(tmp_path, backend="ray", workers=2, max_batch=1), on_update=kill)
    assert kill.killed is not None, "no worker was generating when an item finished"
    assert result.progress.done == 6 and not result.failed()
    records = manifest(tmp_path)
    assert len(records) == 6 and len({r["id"] for r in records}) == 6
    assert samples(tmp_path) == samples(local_sweep[0])


def listening_sockets() -> list[tuple[str, str, int]]:
    """(process, address, port) of each TCP socket listening in this process and its descendants: the
    local Ray's GCS server, raylet, agents and workers (started by this process), and its driver."""
    here = psutil.Process()
    found = []
    for process in [here, *here.children(recursive=True)]:
        try:
            for conn in process.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((process.name(), conn.laddr.ip, conn.laddr.port))
        except psutil.NoSuchProcess:
            pass
    return found


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback  # "::ffff:127.0.0.1" too


CLIENT_WITHOUT_TOKEN = """
import sys
from ray._raylet import GcsClient
GcsClient(address=sys.argv[1])  # asks the GCS for the cluster's id
"""


def test_a_local_ray_listens_on_loopback_only_and_refuses_a_client_without_its_token(ray_cluster, tmp_path):
    from sa3lab.sweep_ray import token_auth_enabled

    sockets = listening_sockets()
    assert {"gcs_server", "raylet"} <= {name for name, _, _ in sockets}, sockets
    reachable = [s for s in sockets if not loopback(s[1])]
    assert not reachable, f"a local Ray listens beyond loopback: {reachable}"
    assert token_auth_enabled(), "a local Ray without token authentication (RAY_AUTH_MODE)"
    # Another user of this machine reaches loopback too: without the token, the GCS refuses them.
    gcs = ray_cluster.get_runtime_context().gcs_address
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(HOME=str(tmp_path), RAY_AUTH_MODE="disabled")  # no token file, none sent
    refused = subprocess.run(
        [sys.executable, "-c", CLIENT_WITHOUT_TOKEN, gcs], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr, refused.stderr[-2000:]


def test_a_local_ray_is_refused_without_token_authentication(monkeypatch):
    ray = pytest.importorskip("ray", reason=NO_RAY)
    from sa3lab import sweep_ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(RuntimeError, match="RAY_AUTH_MODE=disabled"):
        sweep_ray._require_token_auth()
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.setattr(ray, "__version__", "2.40.0")  # before token authentication
    with pytest.raises(RuntimeError, match="cannot authenticate"):
        sweep_ray._require_token_auth()


def test_the_ray_token_file_is_readable_by_its_owner_only(tmp_path):
    pytest.importorskip("ray", reason=NO_RAY)
    from sa3lab.sweep_ray import _private_token_file

    new, old = tmp_path / "new" / "auth_token", tmp_path / "auth_token"
    _private_token_file(new)
    old.write_text("x" * 64)
    old.chmod(0o644)
    _private_token_file(old)
    assert len(new.read_text()) == 64 and old.read_text() == "x" * 64
    assert new.stat().st_mode & 0o777 == 0o600 and old.stat().st_mode & 0o777 == 0o600


LORA = MODELS / "lora" / "lora_a.safetensors"
FRESH_SWEEP = """
import sys
from sa3lab.lab import Lab
from sa3lab.sweep_plan import SweepRequest
prompts, folder = sys.argv[1:-1], sys.argv[-1]
Lab().sweep(SweepRequest(model="demo", prompts=prompts, seeds=[1, 2], duration=1.0, output_dir=folder))
"""


def test_a_sweep_after_a_lora_run_equals_a_fresh_process_sweep_and_records_no_lora(tmp_path):
    fresh = tmp_path / "fresh"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", FRESH_SWEEP, *PROMPTS, str(fresh)], check=True, env=env)
    lab = Lab()
    styled = lab.generate(
        GenerationRequest(
            model="demo",
            prompt=PROMPTS[0],
            duration=1.0,
            seed=1,
            lora_files=[str(LORA)],
            lora_strengths=[0.8],
            output_dir=str(tmp_path / "styled"),
        )
    )
    assert [lora["name"] for lora in styled.settings["loras"]] == [LORA.name]
    after = lab.sweep(sweep(tmp_path / "after"))  # the same cached model, which just ran with the LoRA
    assert samples(tmp_path / "after") == samples(fresh) and len(samples(fresh)) == 6
    assert all(record["settings"]["loras"] == [] for record in after.records)
    for sidecar in (tmp_path / "after").glob("*.json"):
        assert json.loads(sidecar.read_text())["settings"]["loras"] == []


def test_a_sweep_can_set_and_vary_any_generation_setting_and_records_each(lab, tmp_path):
    request = SweepRequest(
        model="demo",
        prompts=[PROMPTS[0], {"prompt": PROMPTS[1], "scale_phi": 0.5}],
        seeds=[4],
        duration=1.0,
        cfg_scale=3.0,
        settings={"lora_files": [str(LORA)], "lora_strengths": [0.6]},
        grid={"sampler": ["euler", "dpmpp"]},
        output_dir=str(tmp_path / "grid"),
    )
    result = lab.sweep(request)
    assert len(result.records) == 4 and not result.failed()
    ran = {(r["prompt"], r["settings"]["sampler"]): r for r in result.records}
    assert set(ran) == {(p, s) for p in PROMPTS[:2] for s in ("euler", "dpmpp")}
    assert {ran[(PROMPTS[1], s)]["settings"]["scale_phi"] for s in ("euler", "dpmpp")} == {0.5}
    assert ran[(PROMPTS[0], "euler")]["settings"]["scale_phi"] == 0.0  # the model's default, as it ran
    for record in result.records:
        (lora,) = record["settings"]["loras"]
        assert lora["name"] == LORA.name and lora["strength"] == 0.6 and len(lora["sha256"]) == 64
    audio = samples(tmp_path / "grid")
    assert len(set(audio.values())) == 4  # each sampler made its own audio
    # each item is a generation request: the lab's own generation of it gives the same audio
    (item,) = [
        i for i in request.items() if i.prompt == PROMPTS[1] and dict(i.settings)["sampler"] == "dpmpp"
    ]
    alone = lab.generate(item.request(str(tmp_path / "alone")))
    assert alone.audio[0].numpy().T.tobytes() == audio[f"{item.stem}.wav"]
