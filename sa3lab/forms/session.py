"""What every form in one kernel shares: one ``Lab`` (models stay loaded) and a pasted token in memory.

The pasted token lives only in this object: never in a widget value (widget state can be saved with
the notebook), never on disk, never in a repr.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from ..auth import resolve_token
from ..lab import Lab


class Session:
    def __init__(self, lab: Lab | None = None):
        self._lab = lab
        self._token: str | None = None
        self._listeners: list[Callable[[], Callable[[], None] | None]] = []

    @property
    def lab(self) -> Lab:
        if self._lab is None:
            self._lab = Lab()
        return self._lab

    @property
    def token(self) -> str | None:
        """The pasted token, or None (then the lab falls back to the stored login, HF_TOKEN, secrets)."""
        return self._token

    def set_token(self, token: str | None) -> None:
        self._token = (token or "").strip() or None
        alive = [ref for ref in self._listeners if ref() is not None]
        self._listeners = alive
        for ref in alive:
            listener = ref()
            if listener is not None:
                listener()

    def on_token_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after the token changes, for as long as its owner lives (weakly held)."""
        self._listeners.append(
            weakref.WeakMethod(listener) if hasattr(listener, "__self__") else (lambda: listener)
        )

    def secrets(self) -> list[str]:
        """Strings to blank out of any message shown in a form: the pasted token and the one in use."""
        return [t for t in {self._token, resolve_token(self._token).token} if t]

    def __repr__(self) -> str:
        return f"Session(pasted_token={'set' if self._token else 'none'})"


_SHARED: Session | None = None


def shared_session() -> Session:
    """The kernel's session, created on first use."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Session()
    return _SHARED
