"""The kernel plumbing a button-started run needs: run on the main thread, and hear Stop meanwhile.

Colab does not show widget updates sent from a background thread (googlecolab/colabtools#3373), so a
run started by a button executes on the kernel's main thread, like a cell: progress, status and
results are sent from there, and the notebook's interrupt (SIGINT) stops it between steps. While it
runs, the kernel would not read the Stop button's click until the run ends; :func:`process_ui_events`
dispatches pending widget (comm) messages in between steps, and leaves every other request (a queued
cell) waiting in its order.

Two kernel layouts exist: ipykernel 6 (Colab: requests wait in the shell stream's queue) and
ipykernel 7 (a shell-channel thread hands requests to the main thread over an in-process socket;
JupyterLab 4.6 and Notebook 7 send widget messages on a subshell, so a click handler may run on a
subshell thread). Anything else (no kernel, an unknown layout) degrades to: run directly, Stop only
through the interrupt. :func:`client_session` tells which page connection sent the request being
handled, so a form can notice that its page was reloaded.
"""

from __future__ import annotations

import signal
import threading

COMM_MESSAGES = frozenset({"comm_msg", "comm_open", "comm_close"})


def _kernel():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return getattr(get_ipython(), "kernel", None)


def _msg_type(kernel, frames) -> str:
    _, rest = kernel.session.feed_identities(frames, copy=False)
    return kernel.session.deserialize(rest, content=False, copy=False)["header"]["msg_type"]


def _parent_ident(kernel):
    if hasattr(kernel, "_shell_parent_ident"):  # ipykernel 7 keeps it in a context variable
        return kernel._get_shell_context_var(kernel._shell_parent_ident)
    return kernel._parent_ident.get("shell", b"")


def _dispatch(kernel, frames) -> None:
    """Handle one comm message now, on this thread, as the kernel's shell dispatch would."""
    saved_parent, saved_ident = kernel.get_parent("shell"), _parent_ident(kernel)
    idents, rest = kernel.session.feed_identities(frames, copy=False)
    msg = kernel.session.deserialize(rest, content=True, copy=False)
    kernel.set_parent(idents, msg, channel="shell")
    kernel._publish_status("busy", "shell")
    try:
        kernel.shell_handlers[msg["header"]["msg_type"]](kernel.shell_stream, idents, msg)
    except Exception:  # noqa: BLE001 - a widget callback's error must not end the run
        kernel.log.error("Exception in a widget message handler", exc_info=True)
    finally:
        kernel._publish_status("idle", "shell")
        kernel.set_parent(saved_ident, saved_parent, channel="shell")


def _pending_v6(kernel, limit: int) -> int:
    kernel.shell_stream.flush()  # move what the socket holds into the kernel's queue
    kept, done = [], 0
    while True:
        try:
            item = kernel.msg_queue.get_nowait()
        except Exception:  # noqa: BLE001 - asyncio / tornado QueueEmpty
            break
        frames = item[2][0]
        if done < limit and _msg_type(kernel, frames) in COMM_MESSAGES:
            _dispatch(kernel, frames)
            done += 1
        else:
            kept.append(item)
    for item in kept:  # the same order: they run after the current handler returns
        kernel.msg_queue.put_nowait(item)
    return done


def _pending_v7(kernel, limit: int) -> int:
    import zmq

    pair = kernel.shell_channel_thread.manager.get_shell_channel_to_subshell_pair(None)
    done = 0
    while done < limit:
        try:
            frames = pair.to_socket.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            break
        if _msg_type(kernel, frames) in COMM_MESSAGES:
            _dispatch(kernel, frames)
            done += 1
        else:  # it waits for the main shell, which the running handler holds: it runs right after
            kernel.io_loop.add_callback(kernel.shell_main, None, frames)
    return done


def process_ui_events(limit: int = 50) -> int:
    """Dispatch up to ``limit`` pending widget messages now (from the main thread); how many were.

    The kernel is then published as busy again (each dispatched message ends with "idle", and a
    subshell's own "idle" for the click may come after the run's "busy"), so the page shows it busy.
    """
    kernel = _kernel()
    if kernel is None or threading.current_thread() is not threading.main_thread():
        return 0
    try:
        if getattr(kernel, "shell_channel_thread", None) is not None:
            done = _pending_v7(kernel, limit)
        elif hasattr(kernel, "msg_queue"):
            done = _pending_v6(kernel, limit)
        else:
            return 0
        kernel._publish_status("busy", "shell")
        return done
    except Exception:  # noqa: BLE001 - an unknown kernel layout: Stop works through the interrupt only
        kernel.log.warning("sa3lab: cannot read widget messages during a run", exc_info=True)
    return 0


def client_session() -> str | None:
    """The session id of the page connection whose request is being handled (None outside a kernel)."""
    kernel = _kernel()
    if kernel is None:
        return None
    return kernel.get_parent("shell").get("header", {}).get("session")


def cell_id() -> str | None:
    """The notebook cell being run, where the front end says (JupyterLab, Notebook 7, VS Code)."""
    kernel = _kernel()
    if kernel is None:
        return None
    return kernel.get_parent("shell").get("metadata", {}).get("cellId")


def after_this_request(fn) -> None:
    """Run ``fn()`` on the kernel's main thread once the request being handled is over (a run's
    button press, a cell), so it adds nothing to that request's time; now, outside a kernel."""
    kernel = _kernel()
    if kernel is None:
        fn()
        return
    kernel.io_loop.add_callback(fn)


def on_main_thread(fn) -> None:
    """Run ``fn()`` on the kernel's main thread: now if called there, else as soon as it is free.

    From a subshell thread the call is moved to the main thread's event loop, keeping the click as
    its parent request and the interrupt as KeyboardInterrupt.
    """
    kernel = _kernel()
    if threading.current_thread() is threading.main_thread() or kernel is None:
        fn()
        return
    parent, ident = kernel.get_parent("shell"), _parent_ident(kernel)

    def run() -> None:
        saved_parent, saved_ident = kernel.get_parent("shell"), _parent_ident(kernel)
        kernel.set_parent(ident, parent, channel="shell")
        kernel._publish_status("busy", "shell")
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            fn()
        finally:
            signal.signal(signal.SIGINT, previous)
            kernel._publish_status("idle", "shell")
            kernel.set_parent(saved_ident, saved_parent, channel="shell")

    kernel.io_loop.add_callback(run)
