"""Independent PyTorch inference engine for Stability AI's Stable Audio 3 checkpoints."""

__all__ = ["StableAudioModel", "AutoencoderModel"]


def __getattr__(name):
    # Lazy so that importing a submodule (hub, random_models, ...) does not pay for the whole pipeline.
    if name == "StableAudioModel":
        from .pipeline import StableAudioModel

        return StableAudioModel
    if name == "AutoencoderModel":
        from .autoencoder_model import AutoencoderModel

        return AutoencoderModel
    raise AttributeError(name)
