"""The Prompt Assistant with a tiny random-weight Qwen3.5 served by the loopback Hub as Qwen/Qwen3.5-2B."""

import json

import pytest
import torch
from hub_fixtures import ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN
from hubserver import RepoSpec
from tiny_qwen import QWEN3_5_2B_TEXT, with_model_type

from sa3lab import prompt_assistant, prompt_style
from sa3lab.prompt_assistant import MODEL_ID, PromptAssistant
from stable_audio_3.hub import HubAccessError

IDEA = "rain on a tin roof"
FAST = {"greedy": True, "max_new_tokens": 12}


class Recorder:
    """A progress object like the form shell's, keeping what it was told."""

    def __init__(self, stop_on: str | None = None):
        self.stages, self.steps, self.stop_on = [], [], stop_on

    def stage(self, text):
        self.stages.append(text)

    def start(self, total, text):
        self.steps.append((0, total, text))

    def step(self, done, total, text=None):
        self.steps.append((done, total, text))
        if self.stop_on and text and self.stop_on in text:
            raise Stopped()

    def texts(self, part):
        return [s for s in self.steps if s[2] and part in s[2]]


class Stopped(Exception):
    pass


def test_first_use_downloads_with_progress_then_the_model_stays_loaded(qwen_hub):
    assistant, progress = PromptAssistant(), Recorder()
    assert not assistant.is_cached()
    first = assistant.expand(IDEA, "SFX", progress=progress, token=ACCEPTED_TOKEN, **FAST)
    assert qwen_hub.count("GET", "model.safetensors") == 1
    assert progress.texts("downloading Qwen/Qwen3.5-2B")
    assert progress.texts("writing a SFX prompt")[-1][:2] == (12, 12)
    assert first.load_s > 0 and assistant.loaded and assistant.is_cached()
    assert first.revision == qwen_hub.repos[MODEL_ID].commit and first.model_id == MODEL_ID
    assert first.text.startswith("TrackType: SFX, ") and len(first.text) > len("TrackType: SFX, ")
    assert first.new_tokens == 12 and first.attempts == 1 and first.device == "cpu"

    again = assistant.expand(IDEA, "SFX", progress=Recorder(), **FAST)
    assert again.load_s == 0.0 and again.text == first.text  # greedy: the same text
    assert qwen_hub.count("GET", "model.safetensors") == 1
    record = json.dumps(first.metadata())
    assert ACCEPTED_TOKEN not in record and json.loads(record)["text"] == first.text


def test_a_new_kernel_loads_from_the_cache_without_downloading(qwen_hub):
    PromptAssistant().load()
    progress = Recorder()
    PromptAssistant().expand(IDEA, "Music", progress=progress, **FAST)
    assert qwen_hub.count("GET", "model.safetensors") == 1
    assert not progress.texts("MB of")  # nothing was transferred


def test_offline_from_the_cache(qwen_hub, monkeypatch):
    PromptAssistant().load()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(qwen_hub.requests)
    expansion = PromptAssistant().expand(IDEA, "One-shot", **FAST)
    assert len(qwen_hub.requests) == before
    assert expansion.revision == qwen_hub.repos[MODEL_ID].commit and expansion.text


def test_offline_and_not_cached_says_so_in_one_sentence(qwen_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubAccessError) as caught:
        PromptAssistant().expand(IDEA)
    assert caught.value.reason == "offline" and "HF_HUB_OFFLINE" in str(caught.value)
    assert str(caught.value).count(". ") == 0 and not qwen_hub.requests


def test_every_preset_writes_a_prompt_in_its_style(qwen_hub):
    assistant = PromptAssistant()
    for preset in prompt_style.PRESETS:
        expansion = assistant.expand(IDEA, preset, **FAST)
        assert expansion.preset == preset and expansion.category in prompt_style.CATEGORIES
        assert preset == "Auto" or expansion.category == preset
        tag = prompt_style.TAGS[expansion.category]
        assert expansion.text.startswith(tag) and expansion.text[len(tag) :].strip()
        assert "<|im_" not in expansion.raw and "Output:" not in expansion.raw


def test_auto_takes_the_category_from_sa3_tags(qwen_hub):
    progress = Recorder()
    expansion = PromptAssistant().expand(
        "TrackType: Instrument, a cello line", "Auto", progress=progress, **FAST
    )
    assert expansion.category == "Instrument" and expansion.text.startswith("TrackType: ")
    assert not progress.texts("choosing a preset")  # no classifier turn was needed


def test_auto_without_tags_asks_the_model_first(qwen_hub):
    progress = Recorder()
    PromptAssistant().expand("a warm techno groove", "Auto", progress=progress, **FAST)
    assert progress.texts("choosing a preset")[-1][1] == prompt_assistant.CLASSIFIER_TOKENS


def test_sampling_tries_again_until_the_style_holds(qwen_hub):
    # random weights never write "Length: N seconds", so every try fails the style check
    expansion = PromptAssistant().expand(IDEA, "SFX", max_new_tokens=8)
    assert expansion.attempts == prompt_assistant.MAX_ATTEMPTS and not expansion.follows_style
    assert expansion.temperature == prompt_assistant.TEMPERATURE and expansion.text


@pytest.mark.parametrize(
    "idea, preset, options, words",
    [
        ("", "Auto", {}, "Type a short idea"),
        ("   ", "Music", {}, "Type a short idea"),
        (IDEA, "Ambient", {}, "Unknown preset"),
        (IDEA, "Music", {"max_new_tokens": 0}, "max_new_tokens"),
        (IDEA, "Music", {"temperature": 0.0}, "temperature"),
    ],
)
def test_bad_requests_get_one_sentence_before_any_download(qwen_hub, idea, preset, options, words):
    with pytest.raises(ValueError, match=words):
        PromptAssistant().expand(idea, preset, **options)
    assert not qwen_hub.requests


def test_a_transformers_without_the_architecture_says_so_before_the_download(hub, tiny_qwen, tmp_path):
    future = with_model_type(tiny_qwen, tmp_path / "future", "qwen9_future")
    hub.repos[MODEL_ID] = RepoSpec(future)
    unknown = r"'qwen9_future' model, which transformers .* cannot run"
    with pytest.raises(ValueError, match=unknown) as caught:
        PromptAssistant().expand(IDEA)
    assert "pip install -U transformers" in str(caught.value)
    assert hub.count("GET", "model.safetensors") == 0
    local = PromptAssistant(str(future))
    with pytest.raises(ValueError, match=unknown):
        local.expand(IDEA)
    assert local.cpu_estimate("SFX").parameters == prompt_assistant.TEXT_PARAMETERS


def test_this_transformers_runs_qwen3_5():
    assert prompt_assistant.unsupported_architecture({"model_type": "qwen3_5"}, MODEL_ID) is None


def test_no_access_and_no_such_model_get_one_sentence_without_the_token(hub, tiny_qwen):
    hub.repos["someone/gated-helper"] = RepoSpec(tiny_qwen, gated=True, accepted_tokens={ACCEPTED_TOKEN})
    with pytest.raises(HubAccessError) as caught:
        PromptAssistant("someone/gated-helper").expand(IDEA)
    assert caught.value.reason == "needs_login"
    with pytest.raises(HubAccessError) as caught:
        PromptAssistant("someone/gated-helper").expand(IDEA, token=NOT_ACCEPTED_TOKEN)
    assert caught.value.reason == "needs_terms" and NOT_ACCEPTED_TOKEN not in str(caught.value)
    with pytest.raises(HubAccessError, match="Qwen/Qwen3.5-2B") as caught:
        PromptAssistant("nobody/missing").expand(IDEA)
    assert caught.value.reason == "not_found"


def test_stop_during_the_download_stops_it(qwen_hub):
    assistant = PromptAssistant()
    with pytest.raises(Stopped):
        assistant.expand(IDEA, progress=Recorder(stop_on="downloading"), **FAST)
    assert not assistant.loaded


def test_a_local_folder_needs_no_hub(tiny_qwen):
    assistant = PromptAssistant(str(tiny_qwen))
    assert assistant.is_cached()
    expansion = assistant.expand(IDEA, "Music", **FAST)
    assert expansion.revision is None and expansion.text.startswith(prompt_style.TAGS["Music"])


def test_cpu_estimate_counts_the_model_it_will_load(tiny_qwen):
    assistant = PromptAssistant(str(tiny_qwen))
    before = assistant.cpu_estimate("Music")
    assistant.load()
    after = assistant.cpu_estimate("Music")
    assert before.parameters == after.parameters == sum(p.numel() for p in assistant._model.parameters())
    assert 0 < after.typical_s < after.longest_s < float("inf")
    auto = assistant.cpu_estimate("Auto")
    assert auto.prompt_tokens > after.prompt_tokens and auto.typical_s > after.typical_s
    assert "On this CPU an expansion takes about" in auto.sentence()


def test_cpu_estimate_without_the_config_uses_qwen3_5_2b_figures(hub):
    estimate = PromptAssistant().cpu_estimate("SFX")
    assert estimate.parameters == prompt_assistant.TEXT_PARAMETERS and not hub.requests


def test_the_qwen3_5_2b_figures_match_its_model_card():
    from transformers import AutoModelForCausalLM, Qwen3_5TextConfig

    card = Qwen3_5TextConfig(**QWEN3_5_2B_TEXT)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(card)
    assert sum(p.numel() for p in model.parameters()) == prompt_assistant.TEXT_PARAMETERS
    assert model.get_input_embeddings().weight.numel() == prompt_assistant.EMBEDDING_PARAMETERS
