"""Round-trip requests (sa3lab.roundtrip) are checked once, with one actionable sentence per problem."""

import math

import pytest
from parity import MODELS

from sa3lab.lab import Lab
from sa3lab.roundtrip import RoundTripRequest


def test_plain_requests_pass_and_values_are_normalised(tmp_path):
    request = RoundTripRequest("same-s", audio=None, duration=2, seed=7.0, output_dir=tmp_path)
    request.check()
    assert (request.audio, request.duration, request.seed, request.output_dir) == ("", 2.0, 7, str(tmp_path))
    RoundTripRequest(str(MODELS / "same-l")).check()


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(model="small-music"), "small-music is a text-to-audio model; choose same-s or same-l"),
        (dict(model="/no/such/folder"), "The model folder /no/such/folder was not found"),
        (dict(model="nothing"), "Unknown model 'nothing'"),
        (dict(model=None), "The model must be same-s, same-l, demo or a model folder; got None"),
        (dict(duration=500), "more than 0 and at most 120 s for same-s; got 500"),
        (dict(duration="5"), "Duration must be a number of seconds, .*; got the text '5'"),
        (dict(duration=math.nan), "Duration must be a number of seconds, .*; got nan"),
        (dict(chunked="False"), "chunked must be True or False; got the text 'False'"),
        (dict(chunked=1), "chunked must be True or False; got 1"),
        (dict(seed=2**64), "Seed must be -1 .random. or a whole number from 0 to 18446744073709551615"),
        (dict(audio=3), r"The audio must be a file path \(or empty: the test chord\); got 3"),
        (dict(audio="/no/a.wav"), "was not found"),
        (dict(output_dir=""), "The output folder must be a folder path"),
    ],
)
def test_bad_requests_name_the_fix(kw, words):
    with pytest.raises(ValueError, match=words):
        RoundTripRequest(**{"model": "same-s", **kw}).check()


def test_the_lab_takes_only_requests_and_text_tokens():
    lab = Lab()
    with pytest.raises(ValueError, match="A round trip takes a RoundTripRequest; got a dict"):
        lab.roundtrip({"model": "same-s"})
    with pytest.raises(ValueError, match="A generation takes a GenerationRequest; got the text 'demo'"):
        lab.generate("demo")
    with pytest.raises(ValueError, match="A pasted token must be text; got a value of type list"):
        lab.roundtrip(RoundTripRequest("demo", duration=0.5), pasted_token=["hf_x"])
