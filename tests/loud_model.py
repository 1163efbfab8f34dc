"""A demo model whose decoder goes beyond full scale, for the peak-protection tests (issue 25).

The demo's random decoder peaks near -17 dBFS whatever it is given; its last feed-forward output (the
last layer before the audio patches) times :data:`LOUDNESS` makes the seed-0 second of "rain" peak at
about +6 dBFS, a tenth of its samples over full scale.
"""

import torch

LOUDNESS = 30.0


def make_loud(model, factor: float = LOUDNESS):
    """``model`` (a StableAudioModel) with its decoder's last feed-forward output scaled, in place."""
    last = model.model.pretransform.model.decoder.layers[-1].transformers[-1].ff.ff[2]
    with torch.no_grad():
        last.weight.mul_(factor)
        last.bias.mul_(factor)
    return model
