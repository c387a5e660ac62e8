"""The LLaVA convention for records whose text does not say where their images go."""

from __future__ import annotations

from mm15.data.record import IMAGE_TOKEN


def with_image_markers(messages: list[dict[str, str]], n_images: int) -> list[dict[str, str]]:
    """`messages` with one `<image>` line per image before the first user turn's text, unless the
    text already holds a marker somewhere (then a count mismatch is left for the validator)."""
    if n_images == 0 or any(IMAGE_TOKEN in message["content"] for message in messages):
        return messages
    first_user = next((i for i, message in enumerate(messages) if message["role"] == "user"), None)
    if first_user is None:
        return messages
    marked = list(messages)
    content = marked[first_user]["content"]
    marked[first_user] = {"role": "user", "content": f"{IMAGE_TOKEN}\n" * n_images + content}
    return marked
