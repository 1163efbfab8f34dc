"""pytest fixtures: a loopback Hub serving the fixture models under the real repo ids (and the tiny Qwen)."""

import threading
import time

import pytest
from hubserver import HubServer, RepoSpec
from parity import MODELS
from tiny_qwen import write_tiny_qwen

from sa3lab.prompt_assistant import MODEL_ID as PROMPT_ASSISTANT_MODEL

ACCEPTED_TOKEN = "hf_test_accepted_0123456789abcdef"
NOT_ACCEPTED_TOKEN = "hf_test_notaccepted_0123456789abcdef"
REJECTED_TOKEN = "hf_test_unknown_0123456789abcdef"  # the Hub does not know it: 401 invalid credentials

FIXTURE_REPOS = {
    "stabilityai/stable-audio-3-small-music": ("small-music", True),
    "stabilityai/stable-audio-3-small-music-base": ("small-music-base", False),
    "stabilityai/stable-audio-3-medium": ("medium", True),
    "stabilityai/SAME-S": ("same-s", False),
    "stabilityai/SAME-L": ("same-l", False),
}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A started HubServer; HF_ENDPOINT points at it and HF_HOME is a fresh temporary folder."""
    repos = {
        repo_id: RepoSpec(MODELS / folder, gated=gated, accepted_tokens={ACCEPTED_TOKEN} if gated else set())
        for repo_id, (folder, gated) in FIXTURE_REPOS.items()
    }
    server = HubServer(repos, known_tokens={ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN}).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    """A tiny random-weight Qwen3.5 checkpoint folder (see tiny_qwen.py)."""
    return write_tiny_qwen(tmp_path_factory.mktemp("tiny-qwen"))


@pytest.fixture
def qwen_hub(hub, tiny_qwen):
    """The loopback Hub, also serving the tiny model as Qwen/Qwen3.5-2B (open, like the real one)."""
    hub.repos[PROMPT_ASSISTANT_MODEL] = RepoSpec(tiny_qwen)
    return hub


@pytest.fixture
def no_retry_waits(monkeypatch) -> list[float]:
    """The waits between huggingface_hub's retries (1, 2, 4, 8, 8 s ...) in the test's own thread are
    recorded here instead of slept; other threads (the loopback Hub's "slow" fault) still sleep."""
    waits, sleep, caller = [], time.sleep, threading.get_ident()

    def recorded(seconds: float) -> None:
        if threading.get_ident() == caller:
            waits.append(seconds)
        else:
            sleep(seconds)

    monkeypatch.setattr(time, "sleep", recorded)
    return waits
