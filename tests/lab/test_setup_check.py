"""The set-up report and the per-model coverage table (sa3lab.setup_check), in plain words."""

import pytest
from hub_fixtures import NOT_ACCEPTED_TOKEN, REJECTED_TOKEN

from sa3lab.auth import TokenChoice
from sa3lab.device import Machine
from sa3lab.lab import Lab
from sa3lab.setup_check import coverage, setup_report, token_notice

NO_TOKEN = TokenChoice(None, "none")


@pytest.fixture(autouse=True)
def no_real_login(monkeypatch, tmp_path):
    """No stored login or HF_TOKEN of this machine leaks into the tests."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)


def test_setup_report_in_plain_words():
    small = setup_report(Machine(), "medium", NO_TOKEN, free={"cpu_free_gib": 4.0}, versions={"torch": "2.5"})
    assert any("medium needs about 18 GiB of RAM but 4.0 GiB is free" in t for t in small.limits)
    assert any("gated: log in" in t for t in small.limits)
    assert dict(small.facts)["Device"].startswith("CPU only")
    t4 = Machine(cuda=True, cuda_capability=(7, 5), cuda_name="Tesla T4", cuda_total_gib=15.0)
    report = setup_report(
        t4, "small-music", NO_TOKEN, free={"cpu_free_gib": 12.0, "gpu_free_gib": 14.0}, versions={}
    )
    facts = dict(report.facts)
    assert "float16" in facts["Precision"] and "14.0 of 15.0 GiB" in facts["GPU memory free"]
    assert any("small-music fits: it needs about 2.5 GiB of GPU memory" in t for t in report.works)


def test_coverage_with_a_token_that_has_not_accepted_the_terms(hub):
    rows = {r.key: r for r in coverage(Lab().checker, NOT_ACCEPTED_TOKEN)}
    gated = rows["small-music"]
    assert gated.status == "needs terms accepted (403)" and not gated.runnable
    assert "https://huggingface.co/stabilityai/stable-audio-3-small-music" in gated.detail
    assert rows["same-s"].status == "ok" and rows["same-s"].runnable
    assert rows["small-sfx"].status == "not found"  # the loopback Hub does not serve it
    assert all(NOT_ACCEPTED_TOKEN not in r.detail for r in rows.values())


def test_coverage_offline_and_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = {r.key: r for r in coverage(Lab().checker, None)}
    same_s = rows["same-s"]
    assert same_s.status == "offline: not cached" and not same_s.runnable
    assert same_s.why == "offline and not in the local cache"  # not "no access"
    assert rows["demo"].runnable and not rows["optimized"].runnable
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    rows = coverage(Lab().checker, None)
    reachable = [r for r in rows if r.repo_id != "-" and r.key != "optimized"]
    assert all(r.status.startswith("Hub unreachable") for r in reachable)
    assert all(r.why == "the Hub cannot be reached and it is not in the local cache" for r in reachable)


def test_the_optimized_repo_is_explained_not_offered_for_download(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    row = {r.key: r for r in coverage(Lab().checker, None)}["optimized"]
    assert row.status == "not loadable by this engine" and row.detail == "" and not row.runnable
    assert "MLX, ONNX and TensorRT" in row.why and "download" not in row.why


def test_coverage_with_a_rejected_token_names_it_and_keeps_the_open_models(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", REJECTED_TOKEN)
    rows = {r.key: r for r in coverage(Lab().checker, REJECTED_TOKEN)}
    base, gated = rows["small-music-base"], rows["small-music"]
    assert base.status == "ok without your token (the Hub rejected it)" and base.runnable
    assert gated.status == "token rejected (401)" and not gated.runnable
    assert gated.why == "the Hub rejected your token"
    notice = token_notice(list(rows.values()))
    assert notice.startswith("The Hub rejected the token from the HF_TOKEN environment variable")
    assert "set HF_TOKEN to a valid token" in notice
    assert all(REJECTED_TOKEN not in r.detail for r in rows.values())
    assert token_notice(coverage(Lab().checker, None)) == ""


HOSTED = ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "COLAB_RELEASE_TAG", "COLAB_GPU")


@pytest.mark.parametrize(
    "variable,runtime,menu",
    [
        ("COLAB_RELEASE_TAG", "Colab", "Runtime > Change runtime type > T4 GPU"),
        ("KAGGLE_KERNEL_RUN_TYPE", "Kaggle", "Settings > Accelerator > GPU T4 x2 or GPU P100"),
    ],
)
def test_a_hosted_runtime_without_a_gpu_says_how_to_switch_and_what_runs_meanwhile(
    monkeypatch, variable, runtime, menu
):
    for name in HOSTED:
        monkeypatch.delenv(name, raising=False)
    free = {"cpu_free_gib": 12.0, "gpu_free_gib": 14.0}
    t4 = Machine(cuda=True, cuda_capability=(7, 5), cuda_name="Tesla T4", cuda_total_gib=15.0)
    assert setup_report(Machine(), "demo", NO_TOKEN, free=free, versions={}).switch == ""  # not hosted
    monkeypatch.setenv(variable, "Interactive" if runtime == "Kaggle" else "release-colab_20260819")
    cpu = setup_report(Machine(), "demo", NO_TOKEN, free=free, versions={})
    assert dict(cpu.facts)["Runtime"] == f"{runtime} (hosted notebook)"
    assert cpu.switch.startswith(f"This {runtime} runtime has no GPU: choose {menu}")
    assert "the demo model, the small models and SAME-S run on the CPU" in cpu.switch
    assert cpu.switch.count(". ") == 0 and cpu.switch.endswith("need the GPU.")
    assert setup_report(t4, "demo", NO_TOKEN, free=free, versions={}).switch == ""  # it has one
