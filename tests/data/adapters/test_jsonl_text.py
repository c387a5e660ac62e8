"""The jsonl-text adapter (text-only chat JSONL), end to end on small sources."""

from __future__ import annotations

import json

from tests.data.adapters.helpers import by_key, user_assistant
from tests.fixtures_formats import read_source

# ---- end to end -----------------------------------------------------------------------------------


def test_jsonl_text_end_to_end(jsonl_text_source):
    samples = by_key(read_source("jsonl-text", jsonl_text_source))
    assert list(samples) == ["chat.jsonl:1", "chat.jsonl:2", "chat.jsonl:3"]
    assert samples["chat.jsonl:1"].messages == user_assistant("Name a prime.", "7")
    assert samples["chat.jsonl:2"].messages[0] == {"role": "system", "content": "Be brief."}
    assert all(s.images == [] and s.task == "jsonl-text" for s in samples.values())


def test_jsonl_with_a_byte_order_mark_and_crlf_line_ends_is_read(tmp_path):
    line = json.dumps({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]})
    (tmp_path / "c.jsonl").write_bytes(("\ufeff" + line + "\r\n\r\n" + line + "\r\n").encode())
    first, second = read_source("jsonl-text", tmp_path)
    assert (first.key, second.key) == ("c.jsonl:1", "c.jsonl:3")
    assert first.messages == second.messages == user_assistant("Q", "A")
