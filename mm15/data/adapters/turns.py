"""Conversations in a source's own layout, checked and mapped onto the record's {role, content} turns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mm15.data.adapters.origin import Rejected, short, type_name
from mm15.data.record import Reason


def parse_turns(
    turns: Any, *, field: str, role_key: str, content_key: str, roles: Mapping[str, str]
) -> list[dict[str, str]]:
    """`turns` (the source's `field`) as record messages; `roles` maps the source's role names to ours."""
    if not isinstance(turns, list):
        raise Rejected(Reason.MALFORMED, f"{field!r} must be a list, got {type_name(turns)}")
    messages = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise Rejected(Reason.MALFORMED, f"turn {index} must be an object, got {type_name(turn)}")
        role, content = turn.get(role_key), turn.get(content_key)
        if not isinstance(role, str) or not isinstance(content, str):
            raise Rejected(Reason.MALFORMED, f"turn {index} needs string {role_key!r} and {content_key!r}")
        if role not in roles:
            raise Rejected(Reason.MALFORMED, f"turn {index} has unknown role {short(role, 40)!r}")
        messages.append({"role": roles[role], "content": content})
    return messages
