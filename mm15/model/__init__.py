"""The MM1.5 model: image splitting, vision tower, C-Abstractor, LM, processor and presets.

Importing this package registers the model with the `transformers` Auto classes, so a saved
folder loads with `AutoConfig`, `AutoModelForImageTextToText`, `AutoProcessor` and
`AutoImageProcessor` from a local path.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageTextToText,
    AutoProcessor,
)

from mm15.model.configuration import MM15Config
from mm15.model.image_processing import MM15ImageProcessor
from mm15.model.modeling import MM15CausalLMOutputWithPast, MM15ForConditionalGeneration
from mm15.model.presets import PRESETS, ModelPreset, build_model, build_processor, get_preset
from mm15.model.processing import MM15Processor
from mm15.model.splitting import SplitConfig, image_token_count, select_grid

AutoConfig.register("mm15", MM15Config, exist_ok=True)
AutoModelForImageTextToText.register(MM15Config, MM15ForConditionalGeneration, exist_ok=True)
AutoImageProcessor.register(
    MM15Config,
    image_processor_classes={"pil": MM15ImageProcessor, "torchvision": MM15ImageProcessor},
    exist_ok=True,
)
AutoProcessor.register(MM15Config, MM15Processor, exist_ok=True)

__all__ = [
    "PRESETS",
    "MM15CausalLMOutputWithPast",
    "MM15Config",
    "MM15ForConditionalGeneration",
    "MM15ImageProcessor",
    "MM15Processor",
    "ModelPreset",
    "SplitConfig",
    "build_model",
    "build_processor",
    "get_preset",
    "image_token_count",
    "select_grid",
]
