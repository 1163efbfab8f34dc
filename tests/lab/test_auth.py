"""Token sources and cached access checks, against the loopback Hub."""

import pytest
from hub_fixtures import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN, REJECTED_TOKEN

from sa3lab.auth import Access, AccessChecker, resolve_token, token_source

REPO = "stabilityai/stable-audio-3-small-music"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_token_order_pasted_then_stored_login_then_env(hub, monkeypatch, tmp_path):
    assert resolve_token().source == "none"
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert resolve_token().token == "hf_from_env"
    (tmp_path / "hf_home").mkdir(exist_ok=True)
    (tmp_path / "hf_home" / "token").write_text("hf_from_login\n")
    choice = resolve_token()
    assert (choice.token, choice.source) == ("hf_from_login", "stored login")
    pasted = resolve_token("  hf_pasted  ")
    assert (pasted.token, pasted.source) == ("hf_pasted", "pasted")
    assert "hf_pasted" not in repr(pasted)


@pytest.mark.parametrize(
    "token, status",
    [(ACCEPTED_TOKEN, Access.OK), (None, Access.NEEDS_LOGIN), (NOT_ACCEPTED_TOKEN, Access.NEEDS_TERMS)],
)
def test_access_outcomes(hub, token, status):
    result = AccessChecker().check(REPO, token)
    assert result.status is status
    if status is Access.NEEDS_TERMS:
        assert "https://huggingface.co/" + REPO in result.message
    assert NOT_ACCEPTED_TOKEN not in result.message and ACCEPTED_TOKEN not in result.message


def test_unknown_repo_and_server_error(hub):
    assert AccessChecker().check("nobody/nothing", None).status is Access.NOT_FOUND
    hub.inject_fault("/api/models/stabilityai/SAME-S/auth-check", "500", count=10)
    result = AccessChecker().check("stabilityai/SAME-S", None)
    assert result.status is Access.SERVER_ERROR and "try again" in result.message


def test_checks_are_cached_per_token_digest_until_the_ttl(hub):
    clock = Clock()
    checker = AccessChecker(ttl_s=300, clock=clock)
    calls = lambda: hub.count(contains="/auth-check")  # noqa: E731
    checker.check(REPO, ACCEPTED_TOKEN)
    checker.check(REPO, ACCEPTED_TOKEN)
    assert calls() == 1
    checker.check(REPO, NOT_ACCEPTED_TOKEN)
    assert calls() == 2
    clock.now = 301
    checker.check(REPO, ACCEPTED_TOKEN)
    assert calls() == 3
    assert ACCEPTED_TOKEN not in repr(vars(checker))  # cached per digest, never by the token itself


def test_offline_says_whether_a_cached_copy_is_used(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert AccessChecker().check(REPO, None, cached_locally=True).message == "Offline, using the cached copy."
    result = AccessChecker().check(REPO, None)
    assert result.status is Access.OFFLINE and "not in the local cache" in result.message
    assert hub.count(contains="/auth-check") == 0


def test_no_network_is_reported_as_offline_not_as_a_crash(hub, monkeypatch):
    """A refused connection (no Hub at the endpoint) gives the offline sentence, not an exception."""
    hub.stop()
    result = AccessChecker().check(REPO, ACCEPTED_TOKEN)
    assert result.status is Access.OFFLINE and "not in the local cache" in result.message
    assert ACCEPTED_TOKEN not in result.message


def test_a_rejected_token_is_named_with_its_source_open_repos_pass_gated_ones_say_replace(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", REJECTED_TOKEN)
    assert token_source(REJECTED_TOKEN) == "HF_TOKEN" and token_source("hf_other") == "pasted"
    checker = AccessChecker()
    open_repo = checker.check("stabilityai/SAME-S", REJECTED_TOKEN)
    assert open_repo.ok and open_repo.token_rejected
    assert open_repo.message == (
        "The Hub rejected the token from the HF_TOKEN environment variable (401: invalid credentials), so "
        "the open models download without it; to use the gated ones, set HF_TOKEN to a valid token from "
        "https://huggingface.co/settings/tokens."
    )
    gated = checker.check(REPO, REJECTED_TOKEN)
    assert gated.status is Access.TOKEN_REJECTED and gated.token_rejected
    assert gated.message.startswith("The Hub rejected the token from the HF_TOKEN environment variable")
    assert f"{REPO} is gated" in gated.message and "https://huggingface.co/" + REPO in gated.message
    pasted = AccessChecker().check(REPO, "hf_pasted_but_unknown")
    assert (
        "from a token pasted in this notebook" in pasted.message and "paste a valid token" in pasted.message
    )
    for result in (open_repo, gated, pasted):
        assert REJECTED_TOKEN not in result.message and "hf_pasted_but_unknown" not in result.message
    accepted = AccessChecker().check(REPO, ACCEPTED_TOKEN)
    assert accepted.ok and not accepted.token_rejected and accepted.message == ""


def test_a_pasted_token_must_be_text():
    with pytest.raises(ValueError, match="A pasted token must be text; got a value of type int"):
        resolve_token(12345)
