"""Shared pieces of the real-browser tests: Debian chromium through playwright, Jupyter servers on loopback.

Never downloads a browser: playwright drives /usr/bin/chromium. Servers bind 127.0.0.1 on a free port
with a random token. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(command: list[str], root: Path, env: dict, what: str, timeout: float = 90):
    """Run ``command`` + loopback/port/token options until the block ends; yields (base url, token, root).

    ``command`` starts a Jupyter server (``python -m jupyter lab``, ``python -m notebook`` ...) that
    takes ``--ip``, ``--port`` and ``--IdentityProvider.token`` / ``--NotebookApp.token`` style options
    given in it as ``{port}`` and ``{token}`` placeholders.
    """
    token, port = secrets.token_hex(16), free_port()
    argv = [part.format(port=port, token=token) for part in command]
    proc = subprocess.Popen(argv, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"{what} did not start within {timeout:.0f} s (exit code {proc.poll()})")
                time.sleep(0.5)
        yield url, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


def prepare_notebook(name: str, target: Path, **parameters) -> None:
    """Committed notebook ``name`` with papermill ``parameters`` injected, written to ``target`` (not run)."""
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(target),
        parameters=parameters,
        prepare_only=True,
        progress_bar=False,
    )


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
