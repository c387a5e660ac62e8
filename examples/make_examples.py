"""Write the example datasets in this folder, one per `mm15 ingest` format (see README.md here).

    python examples/make_examples.py

The files it writes are committed; this script is how they were made, and rewrites them in place
(run it again after changing it, then check `tests/test_examples.py`). Everything is drawn or
written here: small PNGs with Pillow, PDFs written by hand (Helvetica text, no embedded fonts) and
their pixparse-style OCR annotations measured from the PDF's own glyph boxes with pypdfium2.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent


# ---- images ---------------------------------------------------------------------------------------


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def shapes() -> Image.Image:
    image = Image.new("RGB", (128, 96), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse([14, 24, 58, 68], fill=(220, 30, 30))
    draw.rectangle([72, 26, 114, 68], fill=(30, 60, 210))
    return image


def house() -> Image.Image:
    image = Image.new("RGB", (128, 96), (120, 180, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 72, 127, 95], fill=(60, 160, 60))
    draw.rectangle([40, 44, 88, 78], fill=(235, 225, 200))
    draw.polygon([(34, 46), (64, 20), (94, 46)], fill=(200, 40, 40))
    draw.rectangle([58, 58, 70, 78], fill=(245, 200, 30))
    draw.rectangle([44, 52, 53, 61], fill=(90, 140, 200))
    draw.ellipse([100, 8, 118, 26], fill=(255, 230, 80))
    return image


def triangles() -> Image.Image:
    image = Image.new("RGB", (128, 96), "white")
    draw = ImageDraw.Draw(image)
    for left, top in ((8, 50), (46, 14), (86, 46)):
        draw.polygon([(left, top + 34), (left + 17, top), (left + 34, top + 34)], fill=(30, 150, 60))
    return image


def traffic_light() -> Image.Image:
    image = Image.new("RGB", (64, 128), (200, 220, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([29, 100, 35, 127], fill=(70, 70, 70))
    draw.rounded_rectangle([14, 6, 50, 104], radius=6, fill=(40, 40, 40))
    for top, colour in ((12, (90, 20, 20)), (42, (90, 70, 10)), (72, (40, 230, 80))):
        draw.ellipse([20, top, 44, top + 24], fill=colour)
    return image


def bar_chart() -> Image.Image:
    image = Image.new("RGB", (160, 120), "white")
    draw = ImageDraw.Draw(image)
    draw.text((44, 4), "Fruit sold", fill="black", font=font(11))
    draw.line([(20, 100), (150, 100)], fill="black")
    for index, (name, value, colour) in enumerate(
        (("apples", 12, (200, 40, 40)), ("pears", 7, (150, 190, 40)), ("plums", 4, (110, 50, 140)))
    ):
        left = 28 + 42 * index
        draw.rectangle([left, 100 - 6 * value, left + 26, 99], fill=colour)
        draw.text((left + 8, 88 - 6 * value), str(value), fill="black", font=font(10))
        draw.text((left - 2, 103), name, fill="black", font=font(10))
    return image


def shop_sign() -> Image.Image:
    image = Image.new("RGB", (160, 96), (60, 90, 60))
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 10, 149, 85], fill=(250, 245, 225), outline=(30, 30, 30), width=2)
    draw.text((46, 18), "BAKERY", fill=(120, 60, 20), font=font(18))
    draw.text((28, 48), "Open 7:00 - 13:00", fill="black", font=font(12))
    draw.text((42, 66), "Closed Sunday", fill=(160, 30, 30), font=font(11))
    return image


def score_table() -> Image.Image:
    image = Image.new("RGB", (150, 100), "white")
    draw = ImageDraw.Draw(image)
    rows = (("Name", "Score"), ("Ada", "91"), ("Bo", "78"), ("Cy", "85"))
    for index, (name, score) in enumerate(rows):
        top = 8 + 22 * index
        if index == 0:
            draw.rectangle([8, top, 141, top + 22], fill=(220, 225, 240))
        draw.rectangle([8, top, 141, top + 22], outline="black")
        draw.line([(90, top), (90, top + 22)], fill="black")
        draw.text((14, top + 4), name, fill="black", font=font(12))
        draw.text((98, top + 4), score, fill="black", font=font(12))
    return image


def receipt() -> Image.Image:
    image = Image.new("RGB", (112, 150), (250, 250, 245))
    draw = ImageDraw.Draw(image)
    lines = (("CAFE LUNA", ""), ("Tea", "3.00"), ("Scone", "4.50"), ("Soup", "7.00"), ("TOTAL", "14.50"))
    for index, (item, price) in enumerate(lines):
        top = 8 + 26 * index
        draw.text((10, top), item, fill="black", font=font(12))
        draw.text((68, top), price, fill="black", font=font(12))
    draw.line([(8, 110), (104, 110)], fill="black")
    return image


# ---- llava ----------------------------------------------------------------------------------------


def turns(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"from": speaker, "value": value} for speaker, value in pairs]


def write_llava(folder: Path) -> None:
    """`llava.json` (a JSON list, LLaVA-Instruct style) and `images/`: 6 samples."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name, draw in (
        ("shapes", shapes),
        ("house", house),
        ("triangles", triangles),
        ("traffic_light", traffic_light),
    ):
        (folder / "images" / f"{name}.png").write_bytes(png(draw()))
    records = [
        {
            "id": "llava-0001",
            "image": "images/shapes.png",
            "conversations": turns(
                ("human", "<image>\nWhat shapes are in the picture?"),
                ("gpt", "A red circle on the left and a blue square on the right."),
            ),
        },
        {  # no <image> marker: the adapter puts one before the first user turn, as LLaVA does
            "id": "llava-0002",
            "image": "images/house.png",
            "conversations": turns(
                ("human", "Describe the picture in one sentence."),
                (
                    "gpt",
                    "A small house with a red roof and a yellow door stands on green grass under a blue sky.",
                ),
                ("human", "What colour is the door?"),
                ("gpt", "Yellow."),
            ),
        },
        {
            "id": "llava-0003",
            "image": "images/triangles.png",
            "conversations": turns(("human", "<image>\nHow many triangles are there?"), ("gpt", "Three.")),
        },
        {
            "id": "llava-0004",
            "image": "images/traffic_light.png",
            "conversations": turns(
                ("human", "<image>\nWhich light is on?"), ("gpt", "The green light, at the bottom.")
            ),
        },
        {  # several images: a list of paths, one <image> marker each, in order
            "id": "llava-0005",
            "image": ["images/shapes.png", "images/triangles.png"],
            "conversations": turns(
                ("human", "<image>\n<image>\nWhich picture has more shapes?"),
                ("gpt", "The second: it has three triangles, the first has two shapes."),
            ),
        },
        {  # text only, with a system turn
            "id": "llava-0006",
            "conversations": turns(
                ("system", "You are a helpful assistant."),
                ("human", "Name the three primary colours of light."),
                ("gpt", "Red, green and blue."),
            ),
        },
    ]
    (folder / "llava.json").write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")


# ---- hf-parquet -----------------------------------------------------------------------------------

CAULDRON_SCHEMA = pa.schema(
    [
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        (
            "texts",
            pa.list_(pa.struct([("user", pa.string()), ("assistant", pa.string()), ("source", pa.string())])),
        ),
    ]
)


def write_hf_parquet(folder: Path) -> None:
    """`train-00000-of-00001.parquet` in the_cauldron layout, images embedded as bytes: 4 samples."""
    folder.mkdir(parents=True, exist_ok=True)

    def row(image: Image.Image, *qa: tuple[str, str]) -> dict:
        return {
            "images": [{"bytes": png(image), "path": None}],
            "texts": [{"user": q, "assistant": a, "source": "mm15-example"} for q, a in qa],
        }

    rows = [
        row(
            bar_chart(),
            ("Which fruit sold the most?", "Apples."),
            ("How many pears were sold?", "7"),
        ),
        row(shop_sign(), ("When does the bakery open?", "At 7:00.")),
        row(score_table(), ("What is Bo's score?", "78")),
        row(receipt(), ("<image>What is the total on the receipt?", "14.50")),
    ]
    table = pa.Table.from_pylist(rows, schema=CAULDRON_SCHEMA)
    pq.write_table(table, folder / "train-00000-of-00001.parquet", compression="zstd")


# ---- wds-ocr --------------------------------------------------------------------------------------

PAGE_SIZE = (298, 420)  # A6 portrait, in points
Line = tuple[float, float, int, bool, str]  # x, baseline y (from the bottom), font size, bold, text

DOCUMENTS: dict[str, list[list[Line]]] = {
    "0001": [
        [
            (28, 380, 18, True, "INVOICE 2041"),
            (28, 352, 10, False, "Date: 3 March 2024"),
            (180, 352, 10, False, "Due: 2 April 2024"),
            (28, 310, 11, False, "Paper, 5 reams"),
            (200, 310, 11, False, "45.00"),
            (28, 290, 11, False, "Toner cartridge"),
            (200, 290, 11, False, "62.50"),
            (28, 256, 11, True, "Total"),
            (200, 256, 11, True, "107.50"),
        ],
        [
            (28, 380, 14, True, "Terms"),
            (28, 352, 10, False, "Payment within 30 days."),
            (28, 336, 10, False, "Late payments add 2% a month."),
        ],
    ],
    "0002": [
        [
            (28, 380, 16, True, "Memo"),
            (28, 352, 10, False, "To: All staff"),
            (28, 336, 10, False, "From: Facilities"),
            (28, 300, 11, False, "The lifts will be serviced on Friday."),
            (28, 284, 11, False, "Please use the stairs."),
        ]
    ],
}


def pdf_bytes(pages: list[list[Line]], size: tuple[int, int] = PAGE_SIZE) -> bytes:
    """A minimal PDF 1.4: one text object per line, standard Helvetica fonts (nothing embedded)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    width, height = size
    page_ids = [5 + 2 * index for index in range(len(pages))]
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {len(pages)} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>",
    }
    for page_id, lines in zip(page_ids, pages, strict=True):
        stream = "\n".join(
            f"BT /{'F2' if bold else 'F1'} {points} Tf {x} {y} Td ({escape(text)}) Tj ET"
            for x, y, points, bold, text in lines
        ).encode("latin-1")
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
            f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {page_id + 1} 0 R >>"
        ).encode()
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref, count = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % count
    out += b"".join(b"%010d 00000 n \n" % offsets[number] for number in range(1, count))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref)
    return bytes(out)


def ocr_annotation(pdf: bytes, pages: list[list[Line]]) -> dict:
    """The pixparse json of a PDF: per page its lines and words, boxes normalised [x, y, w, h] from the
    top left, measured from pdfium's glyph boxes (born-digital text, so every score is 1.0)."""
    document = pdfium.PdfDocument(pdf)
    annotation = {"pages": []}
    try:
        for index, lines in enumerate(pages):
            page = document[index]
            width, height = page.get_size()
            text_page = page.get_textpage()
            chars = text_page.get_text_range()
            boxes = [text_page.get_charbox(i, loose=True) for i in range(text_page.count_chars())]
            result = {
                "images_bbox": [],
                "images_bbox_no_text_overlap": [],
                "lines": {"text": [], "bbox": [], "score": [], "word_slice": []},
                "words": {"text": [], "bbox": [], "score": [], "line_pos": []},
            }
            cursor = 0
            for line_number, (_, _, _, _, text) in enumerate(lines):
                start = chars.index(text, cursor)
                cursor = start + len(text)
                first_word = len(result["words"]["text"])
                offset = 0
                for position, word in enumerate(text.split(" ")):
                    at = start + text.index(word, offset)
                    offset = at - start + len(word)
                    result["words"]["text"].append(word)
                    result["words"]["bbox"].append(normalised(boxes[at : at + len(word)], width, height))
                    result["words"]["score"].append(1.0)
                    result["words"]["line_pos"].append([line_number, position])
                result["lines"]["text"].append(text)
                result["lines"]["bbox"].append(normalised(boxes[start:cursor], width, height))
                result["lines"]["score"].append(1.0)
                result["lines"]["word_slice"].append([first_word, len(result["words"]["text"])])
            text_page.close()
            page.close()
            annotation["pages"].append(result)
    finally:
        document.close()
    return annotation


def normalised(
    char_boxes: list[tuple[float, float, float, float]], width: float, height: float
) -> list[float]:
    """[x, y, w, h] in [0, 1] from the top left, around pdfium boxes (left, bottom, right, top in points)."""
    left = min(box[0] for box in char_boxes)
    bottom = min(box[1] for box in char_boxes)
    right = max(box[2] for box in char_boxes)
    top = max(box[3] for box in char_boxes)
    box = [left / width, (height - top) / height, (right - left) / width, (top - bottom) / height]
    assert min(box) >= 0 and box[0] + box[2] <= 1 and box[1] + box[3] <= 1, box
    return [round(value, 6) for value in box]


def write_wds_ocr(folder: Path) -> None:
    """`pdfa-eng-000000.tar`, a WebDataset shard in the pixparse PDFA layout: per document a `.pdf` and
    a `.json`. Document 0001 has 2 pages, 0002 has 1: 3 samples (one per page)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / "pdfa-eng-000000.tar", "w", format=tarfile.USTAR_FORMAT) as archive:
        for key, pages in DOCUMENTS.items():
            pdf = pdf_bytes(pages)
            annotation = json.dumps(ocr_annotation(pdf, pages)).encode()
            for name, data in ((f"{key}.pdf", pdf), (f"{key}.json", annotation)):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                archive.addfile(info, io.BytesIO(data))


# ---- jsonl-text -----------------------------------------------------------------------------------


def write_jsonl_text(folder: Path) -> None:
    """`text.jsonl`: one `{"id", "messages": [{"role", "content"}]}` conversation per line, 5 samples."""
    folder.mkdir(parents=True, exist_ok=True)
    conversations = [
        [("user", "What is 17 + 25?"), ("assistant", "42")],
        [
            ("system", "Answer in one word."),
            ("user", "What is the capital of Italy?"),
            ("assistant", "Rome."),
        ],
        [
            ("user", "Write a Python function that returns the square of a number."),
            ("assistant", "```python\ndef square(x):\n    return x * x\n```"),
        ],
        [
            ("user", "Convert 3 km to metres."),
            ("assistant", "3,000 metres."),
            ("user", "And to centimetres?"),
            ("assistant", "300,000 centimetres."),
        ],
        [("user", "Give a synonym for 'quick'."), ("assistant", "Fast.")],
    ]
    lines = [
        json.dumps(
            {"id": f"text-{n:04d}", "messages": [{"role": r, "content": c} for r, c in messages]},
            ensure_ascii=False,
        )
        for n, messages in enumerate(conversations, start=1)
    ]
    (folder / "text.jsonl").write_text("\n".join(lines) + "\n")


def main() -> None:
    write_llava(HERE / "llava")
    write_hf_parquet(HERE / "hf-parquet")
    write_wds_ocr(HERE / "wds-ocr")
    write_jsonl_text(HERE / "jsonl-text")


if __name__ == "__main__":
    main()
