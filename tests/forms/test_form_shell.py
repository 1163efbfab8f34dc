"""The shared form shell: messages instead of tracebacks, results kept, Stop and interrupt between steps."""

import ipywidgets as widgets
import pytest

from sa3lab.forms.shell import FormShell


class FakeJob:
    """A form body whose behaviour each test chooses."""

    def __init__(self):
        self.fail_with = None
        self.steps = 3
        self.on_step = None  # called with the step number, when set (stands in for a user's click)

    def read(self):
        if isinstance(self.fail_with, ValueError):
            raise self.fail_with
        return {"n": self.steps}

    def execute(self, request, progress):
        if self.fail_with is not None and not isinstance(self.fail_with, ValueError):
            raise self.fail_with
        progress.start(request["n"], "sampling")
        for i in range(request["n"]):
            if self.on_step is not None:
                self.on_step(i + 1)
            progress.step(i + 1, request["n"])
        return f"result-{request['n']}"

    def render(self, result):
        return f"<p>{result}</p>"


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
    assert shell.results == ["<p>result-2</p>", "<p>result-3</p>"]
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


def test_the_button_runs_here_ignores_a_second_click_and_stop_takes_effect_between_steps(shell, job):
    states = []

    def press(step):
        states.append((shell.running, shell.run_button.disabled, shell.stop_button.disabled))
        shell.run_button.click()  # ignored: a run is going
        if step == 2:
            shell.stop_button.click()

    job.on_step = press
    shell.run_button.click()  # outside a kernel the run happens right here, as on the main thread
    assert states == [(True, True, False), (True, True, False)]
    assert "Stopped" in shell.message.value and shell.results == []
    assert not shell.run_button.disabled and shell.stop_button.disabled and not shell.running
    job.on_step = None
    shell.run_button.click()
    assert shell.results == ["<p>result-3</p>"]


def test_an_interrupt_stops_the_run_with_the_same_message_and_keeps_earlier_results(shell, job):
    assert shell.run() == "result-3"

    def interrupt(step):
        raise KeyboardInterrupt

    job.on_step = interrupt
    assert shell.run() is None
    assert "Stopped" in shell.message.value and shell.results == ["<p>result-3</p>"]


def test_the_results_output_keeps_within_its_budget_and_says_how_many_left(shell, job, monkeypatch):
    from sa3lab.forms import shell as shell_module

    monkeypatch.setattr(shell_module, "RESULTS_BUDGET", 40)
    for _ in range(5):
        shell.run()  # each block is 15 characters: two fit the budget
    assert shell.results == ["<p>result-3</p>"] * 2 and shell.dropped == 3
    assert "3 older result(s) left this view" in shell.results_html()
    shell.clear_results()
    assert "result-" not in shell.results_html() and "older" not in shell.results_html()


def test_a_form_started_during_another_forms_run_waits_visibly_then_runs(job):
    other_job = FakeJob()
    first = FormShell(widgets.VBox([]), job.read, job.execute, job.render)
    second = FormShell(widgets.VBox([]), other_job.read, other_job.execute, other_job.render)
    seen = []

    def click_the_other_form(step):
        if step == 1:
            second.run_button.click()  # arrives while the first run is going
            seen.append((second.status.value, second.running, list(second.results)))

    job.on_step = click_the_other_form
    first.run_button.click()
    assert seen == [("queued behind the running generation", True, [])]
    assert first.results == ["<p>result-3</p>"] and second.results == ["<p>result-3</p>"]
    assert second.status.value == "done" and not second.running


def test_stop_takes_a_queued_run_off_the_queue(job):
    other_job = FakeJob()
    first = FormShell(widgets.VBox([]), job.read, job.execute, job.render)
    second = FormShell(widgets.VBox([]), other_job.read, other_job.execute, other_job.render)

    def click_then_stop(step):
        if step == 1:
            second.run_button.click()
            second.stop_button.click()

    job.on_step = click_then_stop
    first.run_button.click()
    assert first.results and second.results == [] and "taken off the queue" in second.status.value
    assert not second.run_button.disabled


def test_a_checked_run_raises_the_forms_sentence_and_ipython_shows_only_that(out):
    from sa3lab import generation_form
    from sa3lab.forms.shell import RunFailed

    form = generation_form(model="demo", prompt="", duration=1.0, output_dir=out)
    assert form.run() is None  # unchecked: the sentence in the form, None back
    with pytest.raises(RunFailed) as info:
        form.run(check=True)
    sentence = str(info.value)
    assert sentence == form.shell.last_message and sentence.startswith("Enter a prompt")
    assert info.value._render_traceback_() == [f"RunFailed: {sentence}"]
    form.prompt.value = "rain"
    form.steps.value = 2
    assert form.run(check=True) is not None


def test_the_status_and_bar_say_whether_a_run_never_started_failed_or_was_another_buttons_job(shell, job):
    assert shell.run() == "result-3" and (shell.bar.value, shell.status.value) == (3, "done")
    job.fail_with = ValueError("Enter a prompt: the prompt is empty.")  # an input to fix
    assert shell.run() is None
    assert (shell.bar.value, shell.bar.bar_style, shell.status.value) == (
        0,
        "",
        "not started: see the message",
    )
    job.fail_with = RuntimeError("the disk is full")  # fails while running
    assert shell.run() is None
    assert (shell.bar.bar_style, shell.status.value) == ("danger", "failed")
    assert shell.run_task(lambda progress: 1 / 0, "Expand") is None  # another button's job
    assert shell.status.value == "Expand: failed"
    assert shell.run_task(lambda progress: "ok", "Expand") == "ok" and shell.status.value == "Expand: done"
    job.fail_with = None
    assert shell.run() == "result-3" and (shell.bar.bar_style, shell.status.value) == ("", "done")


def _shown_shell(job, folder, name="Test form"):
    shell = FormShell(widgets.VBox([]), job.read, job.execute, job.render, title=name, output_dir=folder)
    shell.display()
    return shell


def test_a_form_shown_again_in_its_place_takes_back_the_results_and_says_how_to_get_back(
    job, tmp_path, capsys
):
    first = _shown_shell(job, tmp_path)
    assert "run this cell again to get it back." in first.results_html()  # no results yet
    first.run()
    job.steps = 2
    first.run()
    again = _shown_shell(job, tmp_path)  # the cell run again (after a restart: a new kernel, same files)
    assert again.results == ["<p>result-2</p>", "<p>result-3</p>"]
    assert "these results come back with it" in again.results_html()
    assert _shown_shell(job, tmp_path, "Other form").results == []  # another form keeps its own
    again.clear_results()
    assert _shown_shell(job, tmp_path).results == []


def test_keeping_results_never_costs_a_run(job, tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would go")
    shell = _shown_shell(job, blocked)
    assert shell.run() == "result-3" and shell.results == ["<p>result-3</p>"]
    kept = _shown_shell(job, tmp_path).kept
    kept.path.parent.mkdir(parents=True)
    kept.path.write_text('{"results": [1, 2], "dropped": 0}')  # damaged: nothing comes back
    assert _shown_shell(job, tmp_path).results == []
