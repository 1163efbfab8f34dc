"""Comparisons (sa3lab.comparison): the seeds are checked before anything loads or downloads."""

import pytest

from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab


@pytest.mark.parametrize(
    "seeds, words",
    [
        (42, r"Seeds must be a list of whole numbers, e\.g\. \[42, 7\]; got 42"),
        ("42, 7", "Seeds must be a list of whole numbers, .*; got the text '42, 7'"),
        ([], "Give at least one seed"),
        ([2**64], "Seed must be -1 .random. or a whole number from 0 to 18446744073709551615"),
        ([42, "7"], "Seed must be -1 .*; got the text '7'"),
        ([True], "Seed must be -1 .*; got True"),
        (list(range(9)), "at most 8 seeds"),
    ],
)
def test_bad_seeds_say_what_to_give(seeds, words):
    with pytest.raises(ValueError, match=words):
        Lab().compare(GenerationRequest("demo", "rain", duration=0.5), seeds)


def test_a_comparison_takes_a_request():
    with pytest.raises(ValueError, match="A comparison takes a GenerationRequest; got a dict"):
        Lab().compare({"model": "demo"}, [1])


def test_a_comparison_checks_every_model_before_running_and_a_missing_folder_is_not_found(tmp_path):
    with pytest.raises(ValueError, match="The model folder /no/such/folder was not found"):
        Lab().compare(GenerationRequest("/no/such/folder", "rain", duration=0.5), [1])
    with pytest.raises(ValueError, match="The model folder /no/such/folder was not found"):
        Lab().compare(
            GenerationRequest("demo", "rain", duration=0.5), [1], models=["demo", "/no/such/folder"]
        )
    with pytest.raises(ValueError, match="Compare 1 to 4 models; got 0."):
        Lab().compare(GenerationRequest("demo", "rain", duration=0.5), [1], models=[])
