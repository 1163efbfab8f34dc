"""LoRA training of the base models (plain torch): adapters, upstream's objective, data, the trainer."""

from .adapters import ADAPTER_PARAMS, AdapterConfig, matches_any, save_lora_file, target_layers
from .data import AudioCaptionDataset, LatentDataset, open_dataset
from .objective import StepDraws, draw_step
from .trainer import LoraTrainer, StepReport, TrainingSettings, TrainingStopped

__all__ = [
    "ADAPTER_PARAMS",
    "AdapterConfig",
    "AudioCaptionDataset",
    "LatentDataset",
    "LoraTrainer",
    "StepDraws",
    "StepReport",
    "TrainingSettings",
    "TrainingStopped",
    "draw_step",
    "matches_any",
    "open_dataset",
    "save_lora_file",
    "target_layers",
]
