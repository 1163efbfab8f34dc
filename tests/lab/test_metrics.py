"""How close a reconstruction is (sa3lab.metrics): SNR and multi-resolution STFT distance."""

import math

import torch

from sa3lab.audio_input import reference_chord
from sa3lab.metrics import multi_resolution_stft_distance, snr_db


def test_round_trip_metrics():
    clip = reference_chord(0.5)
    assert snr_db(clip, clip) == float("inf") and multi_resolution_stft_distance(clip, clip) == 0
    assert abs(snr_db(clip, 0.5 * clip) - 20 * math.log10(2)) < 1e-4
    noisy = clip + 0.1 * torch.randn_like(clip)
    assert multi_resolution_stft_distance(clip, noisy) > multi_resolution_stft_distance(clip, 0.9 * clip) > 0
