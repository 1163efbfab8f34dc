"""The shared form shell: messages instead of tracebacks, results kept, Stop between steps."""

import threading

import ipywidgets as widgets
import pytest

from sa3lab.forms.shell import FormShell


class FakeJob:
    """A form body whose behaviour each test chooses."""

    def __init__(self):
        self.fail_with = None
        self.steps = 3
        self.step_gate = None  # threading.Event that each step waits on, when set

    def read(self):
        if isinstance(self.fail_with, ValueError):
            raise self.fail_with
        return {"n": self.steps}

    def execute(self, request, progress):
        if self.fail_with is not None and not isinstance(self.fail_with, ValueError):
            raise self.fail_with
        progress.start(request["n"], "sampling")
        for i in range(request["n"]):
            if self.step_gate is not None:
                self.step_gate.wait(5)
            progress.step(i + 1, request["n"])
        return f"result-{request['n']}"

    def render(self, result):
        return widgets.HTML(value=result)


@pytest.fixture
def job():
    return FakeJob()


@pytest.fixture
def shell(job):
    return FormShell(widgets.VBox([]), job.read, job.execute, job.render, secrets=lambda: ["hf_secret123"])


def test_results_are_added_newest_first_and_kept_after_a_bad_run(shell, job):
    assert shell.run() == "result-3"
    job.steps = 2
    assert shell.run() == "result-2"
    job.fail_with = ValueError("Enter a prompt: the prompt is empty.")
    assert shell.run() is None
    assert "Enter a prompt" in shell.message.value
    assert [c.value for c in shell.results.children] == ["result-2", "result-3"]
    job.fail_with = None
    assert shell.run() == "result-2"
    assert shell.message.value == ""
    assert not shell.run_button.disabled and shell.stop_button.disabled


def test_unexpected_errors_show_a_short_message_with_collapsible_details_and_no_secret(shell, job):
    job.fail_with = RuntimeError("boom with hf_secret123 inside")
    assert shell.run() is None
    assert "did not expect" in shell.message.value
    assert "<details>" in shell.message.value
    assert "hf_secret123" not in shell.message.value and "[token]" in shell.message.value


def test_out_of_memory_gets_an_actionable_sentence(shell, job):
    job.fail_with = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    shell.run()
    assert "ran out of memory" in shell.message.value and "shorter duration" in shell.message.value


def test_the_button_runs_in_a_thread_disables_itself_and_stop_takes_effect_between_steps(shell, job):
    job.step_gate = threading.Event()
    shell.run_button.click()
    assert shell.run_button.disabled and not shell.stop_button.disabled
    shell.stop_button.click()
    job.step_gate.set()
    shell.wait(5)
    assert "Stopped" in shell.message.value
    assert shell.results.children == ()
    assert not shell.run_button.disabled
    job.step_gate = None
    shell.run_button.click()
    shell.wait(5)
    assert [c.value for c in shell.results.children] == ["result-3"]
