"""Small sources in the public formats `mm15 ingest` reads, built on the fly for tests.

Each `make_*_source(folder, corrupt=False)` writes a source under `folder` and returns the path to
pass to `mm15 ingest` (a folder). With `corrupt=True` the same valid records are written plus bad
ones; `EXPECTED_RECORDS[fmt][corrupt]` gives the exact accounting: the adapter's samples and
rejects by reason, and the rejects the validator adds to those samples (`validator_rejects`).
Bad paths point at `folder/outside/secret.png`, a real file outside the source folder.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from mm15.data.adapters import list_shards as list_source_shards
from mm15.data.adapters import read_shard
from mm15.data.record import Reason, Reject, Sample

OVERSIZE_BYTES = 64 * 2**20 + 1  # just over read_shard's default max_file_bytes; written as a sparse file

# per format, per `corrupt`: what the adapter yields, and what the validator then rejects of its samples
EXPECTED_RECORDS: dict[str, dict[bool, dict]] = {
    "llava": {
        False: {"samples": 6, "rejects": {}, "validator_rejects": {}},
        True: {
            "samples": 6,
            "rejects": {
                Reason.MALFORMED: 3,
                Reason.PATH_ESCAPE: 3,
                Reason.MISSING_FILE: 1,
                Reason.IMAGE_TOO_LARGE: 1,
                Reason.INVALID_JSON: 2,
                Reason.INVALID_UTF8: 1,
            },
            "validator_rejects": {},
        },
    },
    "hf-parquet": {
        False: {"samples": 4, "rejects": {}, "validator_rejects": {}},
        True: {
            "samples": 4,
            "rejects": {Reason.MALFORMED: 4, Reason.PATH_ESCAPE: 1, Reason.MISSING_FILE: 1},
            "validator_rejects": {},
        },
    },
    "wds-ocr": {
        False: {"samples": 3, "rejects": {}, "validator_rejects": {}},
        True: {
            "samples": 5,
            "rejects": {
                Reason.MALFORMED: 2,
                Reason.INVALID_JSON: 1,
                Reason.BAD_DOCUMENT: 1,
                Reason.PATH_ESCAPE: 1,
            },
            "validator_rejects": {Reason.BOX_OUTSIDE_IMAGE: 1},
        },
    },
    "jsonl-text": {
        False: {"samples": 3, "rejects": {}, "validator_rejects": {}},
        True: {
            "samples": 3,
            "rejects": {Reason.INVALID_JSON: 1, Reason.INVALID_UTF8: 1, Reason.MALFORMED: 2},
            "validator_rejects": {},
        },
    },
}


# ---- files ----------------------------------------------------------------------------------------


def image_bytes(size: tuple[int, int], color: str, fmt: str = "PNG") -> bytes:
    """A small real image: a coloured square on white."""
    image = Image.new("RGB", size, "white")
    width, height = size
    ImageDraw.Draw(image).rectangle([width // 4, height // 4, 3 * width // 4, 3 * height // 4], fill=color)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def pdf_bytes(page_sizes: list[tuple[int, int]]) -> bytes:
    """A real PDF with one page per size (in points: Pillow writes 72 dpi), each with a dark text-like bar."""
    pages = []
    for width, height in page_sizes:
        page = Image.new("RGB", (width, height), "white")
        ImageDraw.Draw(page).rectangle([width // 10, height // 10, width // 2, height // 5], fill="black")
        pages.append(page)
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def ocr_json(pages: list[list[tuple[str, list[float]]]]) -> bytes:
    """A pixparse-style annotation: per page the lines' text and normalised [x, y, w, h] boxes."""
    return json.dumps(
        {
            "pages": [
                {
                    "lines": {
                        "text": [text for text, _ in lines],
                        "bbox": [box for _, box in lines],
                        "score": [1.0] * len(lines),
                        "word_slice": [[i, i + 1] for i in range(len(lines))],
                    },
                    "words": {"text": [], "bbox": [], "score": [], "line_pos": []},
                }
                for lines in pages
            ]
        }
    ).encode()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar with the members in this order (names are written as given, even `../evil.json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return path


def write_sparse(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no disk space (and would be slow to read for nothing)."""
    with open(path, "wb") as file:
        file.truncate(size)
    return path


def _outside_secret(folder: Path) -> Path:
    secret = folder / "outside" / "secret.png"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(image_bytes((16, 16), "purple"))
    return secret


def _conversation(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"from": speaker, "value": value} for speaker, value in turns]


# ---- sources --------------------------------------------------------------------------------------


def make_llava_source(folder: Path, corrupt: bool = False) -> Path:
    """A LLaVA source `folder/llava`: `data.json` (a list) and `sub/more.jsonl`, images in `images/`.

    Valid: 6 samples. data.json #0 a0 (PNG, marker in text), #1 a1 (JPEG, no marker: one is
    prepended), #2 a2 (text-only, with a system turn), #3 a3 (two images); sub/more.jsonl line 1
    b0 (image `../images/green.png`, inside the source), line 2 b1 (text-only).
    corrupt=True adds 11 rejects: data.json #4 conversations not a list (MALFORMED), #5 role "bot"
    (MALFORMED), #6 `../outside/...` (PATH_ESCAPE), #7 a symlink to outside (PATH_ESCAPE), #8 an
    absolute path (PATH_ESCAPE), #9 a missing image (MISSING_FILE), #10 a sparse 64 MiB + 1 byte
    image (IMAGE_TOO_LARGE); sub/more.jsonl line 3 (INVALID_JSON), line 4 (INVALID_UTF8), line 5 a
    JSON array (MALFORMED); broken.json, a JSON file that does not parse (one INVALID_JSON).
    (Copying the corrupt source with shutil makes the sparse file a real 64 MiB one: read it in place.)
    """
    root = folder / "llava"
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    (root / "images" / "red.png").write_bytes(image_bytes((32, 24), "red"))
    (root / "images" / "blue.jpg").write_bytes(image_bytes((24, 32), "blue", "JPEG"))
    (root / "images" / "green.png").write_bytes(image_bytes((28, 28), "green"))
    records: list = [
        {
            "id": "a0",
            "image": "images/red.png",
            "conversations": _conversation(("human", "<image>\nWhat colour is the square?"), ("gpt", "Red.")),
        },
        {
            "id": "a1",
            "image": "images/blue.jpg",
            "conversations": _conversation(("human", "What colour is the square?"), ("gpt", "Blue.")),
        },
        {
            "id": "a2",
            "conversations": _conversation(
                ("system", "You are terse."), ("human", "What is 2 + 2?"), ("gpt", "4")
            ),
        },
        {
            "id": "a3",
            "image": ["images/red.png", "images/green.png"],
            "conversations": _conversation(
                ("human", "<image>\n<image>\nWhich square is green?"), ("gpt", "The second.")
            ),
        },
    ]
    lines: list[bytes] = [
        json.dumps(
            {
                "id": "b0",
                "image": "../images/green.png",
                "conversations": _conversation(("human", "<image>\nColour?"), ("gpt", "Green.")),
            }
        ).encode(),
        json.dumps(
            {"id": "b1", "conversations": _conversation(("human", "Hi."), ("gpt", "Hello."))}
        ).encode(),
    ]
    if corrupt:
        secret = _outside_secret(folder)
        link = root / "images" / "link.png"
        link.unlink(missing_ok=True)
        os.symlink(os.path.relpath(secret, link.parent), link)
        write_sparse(root / "images" / "huge.png", OVERSIZE_BYTES)
        ask = _conversation(("human", "<image>\nColour?"), ("gpt", "Purple."))
        records += [
            {"id": "c-conversations", "conversations": "not a list"},
            {"id": "c-role", "conversations": _conversation(("bot", "Hi."), ("gpt", "Hello."))},
            {"id": "c-dotdot", "image": "../outside/secret.png", "conversations": ask},
            {"id": "c-symlink", "image": "images/link.png", "conversations": ask},
            {"id": "c-absolute", "image": str(secret), "conversations": ask},
            {"id": "c-missing", "image": "images/nope.png", "conversations": ask},
            {"id": "c-huge", "image": "images/huge.png", "conversations": ask},
        ]
        lines += [
            b'{"id": "c-json", "conversations": [',
            b'{"id": "c-utf8", "conversations": [{"from": "human", "value": "\xff\xfe"}]}',
            b"[1, 2]",
        ]
        (root / "broken.json").write_text('[{"id": "x", "conversations": [')
    (root / "data.json").write_text(json.dumps(records, indent=1))
    (root / "sub" / "more.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return root


CAULDRON_SCHEMA = pa.schema(
    [
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        (
            "texts",
            pa.list_(pa.struct([("user", pa.string()), ("assistant", pa.string()), ("source", pa.string())])),
        ),
    ]
)


def make_hf_parquet_source(folder: Path, corrupt: bool = False) -> Path:
    """A the_cauldron-layout source `folder/cauldron`: `data/train-00000-of-00001.parquet` (row groups
    of 3 rows), and `images/page.png` for a row that names its image by path.

    Valid: 4 samples. Row 0: one PNG as bytes, no marker (one is prepended); row 1: PNG + JPEG,
    two text turns (4 messages), markers in the text; row 2: no bytes, path `../images/page.png`;
    row 3: text-only. corrupt=True adds 6 rejects: row 4 a null `user` (MALFORMED), row 5 an image
    with neither bytes nor path (MALFORMED), row 6 a path to `../../outside/...` (PATH_ESCAPE), row 7
    a missing image path (MISSING_FILE); `data/broken.parquet`, not Parquet (one MALFORMED), and
    `data/other-layout.parquet`, Parquet without the columns (one MALFORMED).
    """
    root = folder / "cauldron"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    (root / "images" / "page.png").write_bytes(image_bytes((40, 30), "orange"))

    def text(user: str | None, assistant: str) -> dict:
        return {"user": user, "assistant": assistant, "source": "fixture"}

    png, jpeg = image_bytes((32, 24), "red"), image_bytes((24, 32), "blue", "JPEG")
    rows = [
        {"images": [{"bytes": png, "path": None}], "texts": [text("What colour?", "Red.")]},
        {
            "images": [{"bytes": png, "path": "red.png"}, {"bytes": jpeg, "path": None}],
            "texts": [text("<image><image>Which is taller?", "The second."), text("Its colour?", "Blue.")],
        },
        {"images": [{"bytes": None, "path": "../images/page.png"}], "texts": [text("Colour?", "Orange.")]},
        {"images": [], "texts": [text("What is 3 + 4?", "7")]},
    ]
    if corrupt:
        _outside_secret(folder)
        rows += [
            {"images": [{"bytes": png, "path": None}], "texts": [text(None, "Red.")]},
            {"images": [{"bytes": None, "path": None}], "texts": [text("Colour?", "Red.")]},
            {"images": [{"bytes": None, "path": "../../outside/secret.png"}], "texts": [text("C?", "P.")]},
            {"images": [{"bytes": None, "path": "../images/missing.png"}], "texts": [text("C?", "P.")]},
        ]
        (root / "data" / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
        pq.write_table(pa.table({"question": ["q"], "answer": ["a"]}), root / "data" / "other-layout.parquet")
    table = pa.Table.from_pylist(rows, schema=CAULDRON_SCHEMA)
    pq.write_table(table, root / "data" / "train-00000-of-00001.parquet", row_group_size=3)
    return root


def make_wds_ocr_source(folder: Path, corrupt: bool = False) -> Path:
    """A pixparse-style WebDataset source `folder/pdfa` with tar shards.

    Valid: `shard-000000.tar` holds doc0 (a 2-page PDF of 80x40 and 40x60 points; page 0 has two
    lines on one row plus one below, page 1 one line) and scan1 (a 64x48 PNG page, two lines): 3
    samples. corrupt=True adds `shard-000001.tar`: nojson (a PDF alone: MALFORMED), badjson
    (INVALID_JSON), badpdf (BAD_DOCUMENT), short (a 1-page PDF whose json has 2 pages: 1 sample +
    1 MALFORMED), `../evil.json` (PATH_ESCAPE), outside (a PNG page whose box is outside [0, 1]:
    1 sample, which the validator rejects with BOX_OUTSIDE_IMAGE): 2 samples, 5 rejects.
    """
    root = folder / "pdfa"
    doc0 = ocr_json(
        [
            [
                ("Total", [0.55, 0.1, 0.3, 0.1]),
                ("Invoice", [0.1, 0.12, 0.3, 0.1]),
                ("Paid in full", [0.1, 0.5, 0.6, 0.1]),
            ],
            [("Page two", [0.1, 0.1, 0.5, 0.05])],
        ]
    )
    scan1 = ocr_json([[("Hello", [0.1, 0.1, 0.4, 0.2]), ("World", [0.1, 0.5, 0.4, 0.2])]])
    write_tar(
        root / "shard-000000.tar",
        [
            ("doc0.pdf", pdf_bytes([(80, 40), (40, 60)])),
            ("doc0.json", doc0),
            ("scan1.png", image_bytes((64, 48), "gray")),
            ("scan1.json", scan1),
        ],
    )
    if corrupt:
        one_page = ocr_json([[("Text", [0.1, 0.1, 0.5, 0.1])]])
        write_tar(
            root / "shard-000001.tar",
            [
                ("nojson.pdf", pdf_bytes([(50, 50)])),
                ("badjson.pdf", pdf_bytes([(50, 50)])),
                ("badjson.json", b'{"pages": ['),
                ("badpdf.pdf", b"%PDF-1.4 this is not a pdf"),
                ("badpdf.json", one_page),
                ("short.pdf", pdf_bytes([(50, 50)])),
                ("short.json", ocr_json([[("One", [0.1, 0.1, 0.5, 0.1])], [("Two", [0.1, 0.1, 0.5, 0.1])]])),
                ("../evil.json", one_page),
                ("outside.png", image_bytes((40, 40), "gray")),
                ("outside.json", ocr_json([[("Off the page", [1.2, 0.1, 0.3, 0.1])]])),
            ],
        )
    return root


def make_jsonl_text_source(folder: Path, corrupt: bool = False) -> Path:
    """A text-only source `folder/text` with `chat.jsonl`.

    Valid: 3 samples (lines 1-3; line 2 has a system message). corrupt=True appends a blank line
    (not a record) and 4 rejects: line 5 does not parse (INVALID_JSON), line 6 has bytes that are
    not UTF-8 (INVALID_UTF8), line 7 has no `messages` (MALFORMED), line 8 has role "bot" (MALFORMED).
    """
    root = folder / "text"
    root.mkdir(parents=True, exist_ok=True)

    def chat(*messages: tuple[str, str]) -> bytes:
        return json.dumps({"messages": [{"role": r, "content": c} for r, c in messages]}).encode()

    lines = [
        chat(("user", "Name a prime."), ("assistant", "7")),
        chat(("system", "Be brief."), ("user", "Capital of France?"), ("assistant", "Paris.")),
        chat(("user", "2 * 3?"), ("assistant", "6"), ("user", "And 2 * 4?"), ("assistant", "8")),
    ]
    if corrupt:
        lines += [
            b"",
            b'{"messages": [',
            b'{"messages": [{"role": "user", "content": "\xc3\x28"}]}',
            b'{"conversation": []}',
            chat(("bot", "Hi."), ("assistant", "Hello.")),
        ]
    (root / "chat.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return root


MAKERS: dict[str, Callable[..., Path]] = {
    "llava": make_llava_source,
    "hf-parquet": make_hf_parquet_source,
    "wds-ocr": make_wds_ocr_source,
    "jsonl-text": make_jsonl_text_source,
}


def make_source(fmt: str, folder: Path, corrupt: bool = False) -> Path:
    """The `make_*_source` of format `fmt`."""
    return MAKERS[fmt](folder, corrupt=corrupt)


def read_source(fmt: str, path: Path, source: str = "fixture", **options) -> list[Sample | Reject]:
    """Every record of a source, as `mm15 ingest` would read it (category "general", split "train")."""
    path = Path(path)
    root = path if path.is_dir() else path.parent
    return [
        record
        for shard in list_source_shards(fmt, path)
        for record in read_shard(
            fmt, shard, root, source=source, category="general", split="train", **options
        )
    ]
