"""The registered model as MLflow serves it: a pyfunc whose one artifact is the `save_pretrained` folder.

Input: a DataFrame with columns `image` (an encoded image's bytes; None or empty for a text-only prompt)
and `prompt` (the user's turn). Output: one greedy continuation per row. The prompt becomes the user turn
the model was trained on: `<image>\\n` then the text (a prompt that already places its `<image>` marker
keeps it). The model code comes from the installed `mm15` package: loading installs and downloads nothing.
"""

from __future__ import annotations

import base64
import io
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from mm15.data.record import IMAGE_TOKEN

DEFAULT_MAX_NEW_TOKENS = 64
BATCH_SIZE = 8  # prompts decoded together (answers do not depend on it)
EXAMPLE_PROMPT = "What colour is the shape?"
REQUIREMENTS = ("mlflow", "torch", "transformers", "pillow", "pandas", "mm15")


class MM15Model(mlflow.pyfunc.PythonModel):
    """Greedy answers of an mm15 checkpoint to (image, prompt) rows, batched with the KV cache."""

    def load_context(self, context) -> None:
        import torch

        from mm15.eval.generate import load_model

        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.loaded = load_model(str(context.artifacts["model"]), device)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> list[str]:
        from mm15.eval.generate import batches, generate

        max_new_tokens = int((params or {}).get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)
        prompts = prompts_of(model_input)
        answers: list[str] = []
        for chunk in batches(prompts, BATCH_SIZE):
            answers += generate(self.loaded, chunk, max_new_tokens)
        return answers


def prompts_of(model_input: Any) -> list[tuple[list[dict], list[bytes]]]:
    """(messages, images) per row of a DataFrame (or a list of {"image", "prompt"} records)."""
    rows = model_input.to_dict("records") if hasattr(model_input, "to_dict") else list(model_input)
    prompts = []
    for i, row in enumerate(rows):
        text = row.get("prompt")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"row {i}: `prompt` must be a non-empty string")
        image = _image_bytes(row.get("image"))
        images = [image] if image else []
        markers = text.count(IMAGE_TOKEN)
        if images and markers == 0:
            text = f"{IMAGE_TOKEN}\n{text}"
        elif markers != len(images):
            raise ValueError(
                f"row {i}: the prompt has {markers} {IMAGE_TOKEN} markers but {len(images)} images"
            )
        prompts.append(([{"role": "user", "content": text}], images))
    return prompts


def _image_bytes(value: Any) -> bytes | None:
    """Bytes as given; a string as base64 (what JSON carries); None, NaN and empty values as no image."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value) or None
    if isinstance(value, str):
        return base64.b64decode(value) if value else None
    return None


def signature():
    """Inputs `image` (binary, optional) and `prompt` (string); output a string; param `max_new_tokens`."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("binary", "image", required=False), ColSpec("string", "prompt")]),
        outputs=Schema([ColSpec("string")]),
        params=ParamSchema([ParamSpec("max_new_tokens", "long", DEFAULT_MAX_NEW_TOKENS)]),
    )


def example_png() -> bytes:
    """A small picture: a red disc on white."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).ellipse([12, 12, 52, 52], fill=(220, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def input_example():
    """One row (a PNG and a question) and a short generation budget (MLflow runs it when logging)."""
    return pd.DataFrame({"image": [example_png()], "prompt": [EXAMPLE_PROMPT]}), {"max_new_tokens": 4}


def requirements() -> list[str]:
    """What the model needs, pinned to what logged it (recorded only: serving uses the local environment)."""
    pins = []
    for package in REQUIREMENTS:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pins.append(package)
    return pins


# The model's code, logged as a file ("models from code": nothing pickled): the class comes from the
# installed mm15 package when the model loads.
MODEL_CODE = """import mlflow

from mm15.registry.pyfunc import MM15Model

mlflow.models.set_model(MM15Model())
"""


def log_pyfunc(folder: Path):
    """Log `folder` (a staged `save_pretrained` folder) as the pyfunc `model` of the active run."""
    code = Path(folder).parent / "mm15_model.py"
    code.write_text(MODEL_CODE)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(code),
        artifacts={"model": str(folder)},
        signature=signature(),
        input_example=input_example(),
        pip_requirements=requirements(),
    )
