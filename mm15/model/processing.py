"""MM15Processor: tokenizer + image processor + chat template -> model inputs and labels.

Each `<image>` in a conversation becomes the image's token span: per view (tiles row-major, then
the overview; the overview first when the image processor's `overview` is "before") an optional
tile indicator followed by `tokens_per_tile` placeholder tokens, the count given by
:func:`mm15.model.splitting.image_token_count`. Text is tokenized in segments split at special
tokens and image spans, which is what whole-string tokenization does too, so the ids match
`apply_chat_template` while labels stay exact: -100 everywhere but the content of assistant turns
and their end-of-turn token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from transformers import BatchFeature, ProcessorMixin

from mm15.model import grounding
from mm15.model.image_processing import ImageLike, MM15ImageProcessor, open_image
from mm15.model.loss import IGNORE_INDEX
from mm15.model.splitting import Grid, image_token_count, tiles_per_image
from mm15.model.tokenizer import SPECIAL

TileIndicators = Literal["index", "seps", "none"]
TILE_INDICATORS = ("index", "seps", "none")
Message = Mapping[str, Any]

# Renders exactly what `encode_chat` tokenizes; content may be a string with `<image>` markers
# or a list of HF-style parts ({"type": "image"} / {"type": "text", "text": ...}).
CHAT_TEMPLATE = (
    "{{- bos_token if bos_token else '' -}}"
    "{%- for message in messages -%}"
    "{{- '<|' + message['role'] + '|>' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{- '<image>' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|end|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}"
)


def message_text(content: str | Sequence[Mapping[str, Any]]) -> str:
    """Message content as text with `<image>` markers (HF content parts are flattened)."""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part["type"] == "image":
            parts.append(SPECIAL.image)
        elif part["type"] == "text":
            parts.append(part["text"])
        else:
            raise ValueError(f"unsupported content part type {part['type']!r}")
    return "".join(parts)


class MM15Processor(ProcessorMixin):
    """Turns conversations (or prompt strings) and their images into MM1.5 model inputs.

    `tile_indicators`: "index" puts `<tile>k,i,j` before each view (image k, row i, col j,
    1-based; the overview is (k, 0, 0)); "seps" puts `<tile_sep>` between the tiles of a row and
    `<row_sep>` after each row; "none" adds nothing. The overview's span goes after the tiles' or
    before them as the image processor's `overview` says, so spans and pixel_values always agree.
    """

    def __init__(
        self,
        image_processor: MM15ImageProcessor | None = None,
        tokenizer: Any = None,
        chat_template: str | None = None,
        tokens_per_tile: int = 144,
        tile_indicators: TileIndicators = "index",
    ) -> None:
        if tile_indicators not in TILE_INDICATORS:
            raise ValueError(f"tile_indicators must be one of {TILE_INDICATORS}, got {tile_indicators!r}")
        self.tokens_per_tile = tokens_per_tile
        self.tile_indicators = tile_indicators
        super().__init__(image_processor, tokenizer, chat_template=chat_template or CHAT_TEMPLATE)
        self.image_token = SPECIAL.image
        self._ids = {t: self._special_id(t) for t in (SPECIAL.image, SPECIAL.end, SPECIAL.tile)}
        self._ids.update({t: self._special_id(t) for t in (SPECIAL.tile_sep, SPECIAL.row_sep)})
        self._role_ids = {r: self._special_id(SPECIAL.role(r)) for r in ("system", "user", "assistant")}
        self._indicator_cache: dict[str, list[int]] = {}

    def _special_id(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"tokenizer lacks {token!r}: build it with mm15.model.tokenizer")
        return token_id

    @property
    def image_token_id(self) -> int:
        return self._ids[SPECIAL.image]

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values", "image_grids"]

    # -- image spans ------------------------------------------------------------------------

    def num_image_tokens(self, grid: Grid) -> int:
        """Placeholder tokens of one image with this grid (indicator tokens not included)."""
        return image_token_count(grid, self.tokens_per_tile)

    def _text_ids(self, text: str) -> list[int]:
        if text not in self._indicator_cache:
            self._indicator_cache[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._indicator_cache[text]

    def image_span(self, k: int, grid: Grid) -> list[int]:
        """Token ids standing for image k (1-based) of a sample: indicators and placeholders.

        Views are the tiles row-major, then the overview (or the overview first, as the image
        processor's `overview` says); each holds `tokens_per_tile` placeholders, so the span holds
        exactly `num_image_tokens(grid)` of them.
        """
        q = [self.image_token_id] * self.tokens_per_tile
        rows, cols = grid
        if self.tile_indicators == "none":
            return q * tiles_per_image(grid)
        if self.tile_indicators == "seps":
            row = [token for j in range(cols) for token in ([self._ids[SPECIAL.tile_sep]] if j else []) + q]
            tiles, overview = (row + [self._ids[SPECIAL.row_sep]]) * rows, q
        else:
            views = [
                [self._ids[SPECIAL.tile], *self._text_ids(f"{k},{i},{j}"), *q]
                for i, j in [(i, j) for i in range(1, rows + 1) for j in range(1, cols + 1)] + [(0, 0)]
            ]
            tiles, overview = [t for view in views[:-1] for t in view], views[-1]
        return overview + tiles if self.image_processor.overview == "before" else tiles + overview

    # -- encoding -----------------------------------------------------------------------------

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = False) -> str:
        """The conversation as text, identical to `apply_chat_template(..., tokenize=False)`."""
        text = self.tokenizer.bos_token or ""
        for m in messages:
            text += SPECIAL.role(m["role"]) + message_text(m["content"]) + SPECIAL.end
        return text + (SPECIAL.assistant if add_generation_prompt else "")

    def encode_chat(
        self,
        messages: Sequence[Message],
        images: Sequence[ImageLike] = (),
        add_generation_prompt: bool = False,
        max_length: int | None = None,
    ) -> dict[str, Any]:
        """One conversation -> `input_ids`, `labels` (1-D), `pixel_values`, `image_grids`.

        Runs in data-loader workers: decoding and splitting happen here.
        """
        texts = [message_text(m["content"]) for m in messages]
        n_markers = sum(t.count(SPECIAL.image) for t in texts)
        if n_markers != len(images):
            raise ValueError(f"conversation has {n_markers} {SPECIAL.image} markers but {len(images)} images")
        pixel_values, grids = self.image_processor.process_sample(images)
        ids, labels = self._chat_ids(messages, texts, grids, add_generation_prompt, max_length)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "pixel_values": pixel_values,
            "image_grids": grids,
        }

    def chat_length(
        self,
        messages: Sequence[Message],
        image_sizes: Sequence[tuple[int, int]] = (),
        max_length: int | None = None,
    ) -> int:
        """The number of tokens `encode_chat` gives for this conversation, from the images' (width,
        height) alone: nothing is decoded, so a loader can plan packed sequences before it reads pixels."""
        texts = [message_text(m["content"]) for m in messages]
        split = self.image_processor.split_config
        grids = [split.grid_for(h, w, len(image_sizes)) for w, h in image_sizes]
        return len(self._chat_ids(messages, texts, grids, False, max_length)[0])

    def _chat_ids(
        self,
        messages: Sequence[Message],
        texts: list[str],
        grids: list[Grid],
        add_generation_prompt: bool,
        max_length: int | None,
    ) -> tuple[list[int], list[int]]:
        segments = [t.split(SPECIAL.image) for t in texts]
        if sum(len(s) - 1 for s in segments) != len(grids):
            raise ValueError(
                f"conversation has {sum(len(s) - 1 for s in segments)} {SPECIAL.image} markers "
                f"but {len(grids)} images"
            )
        flat = [piece for pieces in segments for piece in pieces if piece]
        encoded = iter(self.tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else [])

        ids: list[int] = []
        labels: list[int] = []

        def emit(tokens: Sequence[int], trained: bool) -> None:
            ids.extend(tokens)
            labels.extend(tokens if trained else [IGNORE_INDEX] * len(tokens))

        if self.tokenizer.bos_token_id is not None:
            emit([self.tokenizer.bos_token_id], False)
        image_index = 0
        for message, pieces in zip(messages, segments, strict=True):
            role = message["role"]
            if role not in self._role_ids:
                raise ValueError(f"unknown role {role!r}; expected system, user or assistant")
            trained = role == "assistant"
            emit([self._role_ids[role]], False)
            for n, piece in enumerate(pieces):
                if n:
                    emit(self.image_span(image_index + 1, grids[image_index]), False)
                    image_index += 1
                if piece:
                    emit(next(encoded), trained)
            emit([self._ids[SPECIAL.end]], trained)
        if add_generation_prompt:
            emit([self._role_ids["assistant"]], False)
        return self._truncate(ids, labels, max_length)

    def encode_text(
        self, text: str, images: Sequence[ImageLike] = (), max_length: int | None = None
    ) -> dict[str, Any]:
        """A prompt string with `<image>` markers (e.g. from `apply_chat_template`) -> model inputs."""
        pieces = text.split(SPECIAL.image)
        if len(pieces) - 1 != len(images):
            raise ValueError(f"text has {len(pieces) - 1} {SPECIAL.image} markers but {len(images)} images")
        pixel_values, grids = self.image_processor.process_sample(images)
        encoded = self.tokenizer(pieces, add_special_tokens=False)["input_ids"]
        ids = list(encoded[0])
        for k, piece_ids in enumerate(encoded[1:]):
            ids += self.image_span(k + 1, grids[k]) + list(piece_ids)
        ids, _ = self._truncate(ids, ids, max_length)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "pixel_values": pixel_values,
            "image_grids": grids,
        }

    def _truncate(
        self, ids: list[int], labels: list[int], max_length: int | None
    ) -> tuple[list[int], list[int]]:
        # an image span is never cut: its features would no longer match its placeholders
        if max_length is None or len(ids) <= max_length:
            return ids, labels
        image_positions = [i for i, t in enumerate(ids) if t == self.image_token_id]
        if image_positions and image_positions[-1] >= max_length:
            raise ValueError(
                f"sample of {len(ids)} tokens cannot be cut to {max_length} without cutting an image span; "
                "drop it or raise max_length"
            )
        return ids[:max_length], labels[:max_length]

    def pad(
        self,
        samples: Sequence[Mapping[str, Any]],
        padding_side: Literal["left", "right"] = "right",
        pad_to_multiple_of: int | None = None,
    ) -> BatchFeature:
        """Collate encoded samples: pad ids (attention mask 0, labels -100), concatenate images."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        length = max(len(s["input_ids"]) for s in samples)
        if pad_to_multiple_of:
            length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
        batch = len(samples)
        input_ids = torch.full((batch, length), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, length), dtype=torch.long)
        with_labels = all("labels" in s for s in samples)
        labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
        for row, sample in enumerate(samples):
            n = len(sample["input_ids"])
            span = slice(length - n, length) if padding_side == "left" else slice(0, n)
            input_ids[row, span] = torch.as_tensor(sample["input_ids"])
            attention_mask[row, span] = 1
            if with_labels:
                labels[row, span] = torch.as_tensor(sample["labels"])
        tile = self.image_processor.tile_size
        pixels = [s["pixel_values"] for s in samples if len(s["pixel_values"])]
        grids = [grid for s in samples for grid in s["image_grids"]]
        data = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values": torch.cat(pixels) if pixels else torch.empty(0, 3, tile, tile),
            "image_grids": torch.tensor(grids, dtype=torch.long).view(-1, 2),
        }
        if with_labels:
            data["labels"] = labels
        return BatchFeature(data)

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        images: Sequence[Any] | None = None,
        conversations: Sequence[Sequence[Message]] | Sequence[Message] | None = None,
        add_generation_prompt: bool = False,
        padding_side: Literal["left", "right"] | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """A batch from prompt strings or from conversations (which also get `labels`).

        `images`: per sample a list (a list of lists), or for prompt strings a flat list taken in
        order of the `<image>` markers. Padding is on the left for prompts and generation, on the
        right for training conversations, unless `padding_side` says otherwise.
        """
        if (text is None) == (conversations is None):
            raise ValueError("pass exactly one of `text` or `conversations`")
        if conversations is not None:
            if conversations and isinstance(conversations[0], Mapping):  # one conversation
                conversations, images = [conversations], [list(images or [])]
            per_sample = self._images_per_sample(images, [None] * len(conversations))
            samples = [
                self.encode_chat(c, imgs, add_generation_prompt, max_length)
                for c, imgs in zip(conversations, per_sample, strict=True)
            ]
            side = padding_side or ("left" if add_generation_prompt else "right")
        else:
            texts = [text] if isinstance(text, str) else list(text)
            per_sample = self._images_per_sample(images, [t.count(SPECIAL.image) for t in texts])
            samples = [
                self.encode_text(t, imgs, max_length) for t, imgs in zip(texts, per_sample, strict=True)
            ]
            side = padding_side or "left"
        return self.pad(samples, padding_side=side, pad_to_multiple_of=pad_to_multiple_of)

    @staticmethod
    def _images_per_sample(images: Sequence[Any] | None, counts: list[int | None]) -> list[list[Any]]:
        if not images:
            return [[] for _ in counts]
        if isinstance(images[0], list | tuple):
            if len(images) != len(counts):
                raise ValueError(f"got image lists for {len(images)} samples but {len(counts)} samples")
            return [list(i) for i in images]
        if any(c is None for c in counts):
            raise ValueError("pass images as one list per conversation")
        if sum(counts) != len(images):
            raise ValueError(
                f"text has {sum(counts)} {SPECIAL.image} markers but {len(images)} images were given"
            )
        out, start = [], 0
        for c in counts:
            out.append(list(images[start : start + c]))
            start += c
        return out

    # -- grounding ----------------------------------------------------------------------------

    @staticmethod
    def image_size(image: ImageLike | tuple[int, int]) -> tuple[int, int]:
        """(width, height) of an image (reads only its header) or of a given (width, height)."""
        return tuple(image) if isinstance(image, tuple) else open_image(image).size

    def box_to_text(self, box: Sequence[float], image: ImageLike | tuple[int, int]) -> str:
        """A pixel box in `image` -> `[x1, y1, x2, y2]` in [0, 1000) over the whole image."""
        return grounding.box_to_text(box, *self.image_size(image))

    def point_to_text(self, x: float, y: float, image: ImageLike | tuple[int, int]) -> str:
        """A pixel point in `image` -> `[x, y]` in [0, 1000) over the whole image."""
        return grounding.point_to_text(x, y, *self.image_size(image))

    def text_to_boxes(self, text: str, image: ImageLike | tuple[int, int]) -> list[tuple[float, ...]]:
        """Boxes written in `text` -> pixel boxes in `image`."""
        return grounding.text_to_boxes(text, *self.image_size(image))
