"""`syn_code`: Python snippets rendered as monospace images; transcribe them or say what they print."""

from __future__ import annotations

import math
import re

from PIL import Image, ImageDraw

from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.drawing import RGB, font, font_size, jitter, text_width
from mm15.data.synthetic.words import SHORT_WORDS

TRANSCRIBE = ("Write the code shown in the image.", "Transcribe the code in the image.")
OUTPUT = ("What does this code print?", "What is the output of this Python code?")
NAMES = ("x", "y", "n", "a", "b", "total", "count", "value")
FUNCTIONS = ("add", "double", "scale", "shift", "step")
_TOKENS = re.compile(
    r'(?P<string>"[^"]*")|(?P<number>\b\d+\b)|(?P<keyword>\b(?:print|for|in|range|if|else|def|return|len|sum|max|min)\b)'
)
_THEMES = {  # background, text, string, number, keyword
    "light": ((250, 250, 250), (30, 30, 30), (160, 60, 20), (20, 100, 170), (150, 40, 160)),
    "dark": ((35, 37, 45), (225, 225, 225), (230, 170, 100), (120, 200, 240), (220, 130, 230)),
}


def code(ctx: Context) -> Draft:
    rng, tier = ctx.rng, ctx.tier
    if tier == 0 or rng.random() < 0.3:
        snippet = (_one_liner, _two_lines, _function)[tier](ctx)
        image = render_code(ctx, snippet)
        return Draft(
            "transcribe_code", image_prompt(rng.choice(TRANSCRIBE)), snippet, [image], meta={"code": snippet}
        )
    snippet, output = (_program_1, _program_2)[tier - 1](ctx)
    image = render_code(ctx, snippet)
    return Draft("code_output", image_prompt(rng.choice(OUTPUT)), output, [image], meta={"code": snippet})


def _one_liner(ctx: Context) -> str:
    rng = ctx.rng
    a, b, c = rng.randint(0, 99), rng.randint(0, 99), rng.randint(0, 99)
    return rng.choice(
        (
            f"print({a} + {b})",
            f"{rng.choice(NAMES)} = {a} * {b}",
            f'print("{rng.choice(SHORT_WORDS)}")',
            f"{rng.choice(NAMES)} = [{a}, {b}, {c}]",
        )
    )


def _two_lines(ctx: Context) -> str:
    return _program_1(ctx)[0]


def _function(ctx: Context) -> str:
    rng = ctx.rng
    name, arg, op, k = (
        rng.choice(FUNCTIONS),
        rng.choice(("x", "n", "v")),
        rng.choice("+-*"),
        rng.randint(1, 9),
    )
    return f"def {name}({arg}):\n    return {arg} {op} {k}\n\nprint({name}({rng.randint(0, 20)}))"


def _program_1(ctx: Context) -> tuple[str, str]:
    """Two or three lines: arithmetic on variables, len, upper, max/min."""
    rng = ctx.rng
    a, b, c = rng.randint(1, 20), rng.randint(1, 20), rng.randint(1, 20)
    word = rng.choice(SHORT_WORDS)
    kind = rng.randrange(4)
    if kind == 0:
        v, w = rng.sample(NAMES, 2)
        op = rng.choice("+-*")
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        return f"{v} = {a}\n{w} = {b}\nprint({v} {op} {w})", str(value)
    if kind == 1:
        return f's = "{word}"\nprint(len(s))', str(len(word))
    if kind == 2:
        return f'print("{word}".upper())', word.upper()
    pick = rng.choice(("max", "min"))
    return f"nums = [{a}, {b}, {c}]\nprint({pick}(nums))", str(
        max(a, b, c) if pick == "max" else min(a, b, c)
    )


def _program_2(ctx: Context) -> tuple[str, str]:
    """Loops, slicing, conditionals, functions."""
    rng = ctx.rng
    a, b, k = rng.randint(1, 20), rng.randint(1, 20), rng.randint(2, 4)
    word = rng.choice(SHORT_WORDS)
    kind = rng.randrange(5)
    if kind == 0:
        n = rng.randint(2, 6)
        return f"total = 0\nfor i in range({n}):\n    total += i * {k}\nprint(total)", str(
            k * n * (n - 1) // 2
        )
    if kind == 1:
        return f's = "{word}"\nprint(s[::-1])', word[::-1]
    if kind == 2:
        text = f'x = {a}\nif x > {b}:\n    print("big")\nelse:\n    print("small")'
        return text, "big" if a > b else "small"
    if kind == 3:
        c = rng.randint(1, 20)
        return f"nums = [{a}, {b}, {c}]\nprint(sum(nums) * {k})", str((a + b + c) * k)
    name, op = rng.choice(FUNCTIONS), rng.choice("+*")
    value = a + k if op == "+" else a * k
    return f"def {name}(x):\n    return x {op} {k}\n\nprint({name}({a}))", str(value)


def render_code(ctx: Context, snippet: str) -> Image.Image:
    """The snippet in fixed-width cells (the bundled font is proportional), keywords highlighted."""
    rng = ctx.rng
    size = font_size(ctx.base, rng.uniform(0.08, 0.1))
    cell = math.ceil(max(text_width(size, char) for char in snippet if char != "\n"))
    line_height = round(size * 1.4)
    lines = snippet.split("\n")
    text_w, text_h = cell * max(len(line) for line in lines), line_height * len(lines)
    pad = size
    width, height = ctx.at_least(text_w + 2 * pad, max(text_h + 2 * pad, 0.6 * ctx.base), (1.0, 1.3))
    background, text, *accents = _THEMES[rng.choice(("light", "dark"))]
    image = Image.new("RGB", (width, height), jitter(rng, background, 5))
    draw = ImageDraw.Draw(image)
    colours = _char_colours(snippet, text, accents)
    x0 = rng.randint(pad // 2, width - text_w - pad // 2)
    y0 = rng.randint(pad // 2, height - text_h - pad // 2)
    offset = 0
    for row, line in enumerate(lines):
        for col, char in enumerate(line):
            if char != " ":
                centre = (x0 + (col + 0.5) * cell, y0 + row * line_height + size / 2)
                draw.text(centre, char, font=font(size), fill=colours[offset + col], anchor="mm")
        offset += len(line) + 1
    return image


def _char_colours(snippet: str, text: RGB, accents: list[RGB]) -> list[RGB]:
    colours = [text] * len(snippet)
    for match in _TOKENS.finditer(snippet):
        accent = accents[("string", "number", "keyword").index(match.lastgroup)]
        colours[match.start() : match.end()] = [accent] * (match.end() - match.start())
    return colours
