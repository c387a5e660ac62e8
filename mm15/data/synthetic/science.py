"""`syn_science`: labelled diagrams (food chain, circuit, orbits, plant) with multiple-choice questions."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.drawing import PAPERS, arrow, centred_text, font, font_size, jitter, text_width

LETTERS = "ABCD"
INK = (30, 30, 30)
FOOD_LEVELS = (
    ("grass", "algae", "leaves", "seeds", "clover", "wheat"),
    ("rabbit", "grasshopper", "mouse", "snail", "caterpillar", "deer"),
    ("frog", "snake", "spider", "lizard", "sparrow"),
    ("hawk", "fox", "owl", "heron"),
    ("eagle", "wolf", "lion"),
)
PLANETS = ("Zorb", "Kalo", "Miro", "Tavi", "Pexa", "Rulo", "Onda", "Sirra", "Vemo", "Quill")
SKIES = ((235, 245, 255), (250, 250, 250), (255, 245, 220), (215, 232, 250))
SOILS = ((150, 110, 70), (120, 90, 60), (175, 140, 100))
PLANT_PARTS = {
    "flower": "makes seeds",
    "leaf": "makes food from sunlight",
    "stem": "holds the plant up",
    "root": "takes in water from the soil",
}


def science(ctx: Context) -> Draft:
    diagrams = (food_chain, circuit, orbits, plant) if ctx.tier < 2 else (food_chain, circuit, orbits)
    return ctx.rng.choice(diagrams)(ctx)


def multiple_choice(
    ctx: Context, task: str, image: Image.Image, question: str, answer: str, options: list[str]
) -> Draft:
    """A draft whose answer is the letter of `answer` among `options` shuffled (answer included)."""
    choices = list(options)
    ctx.rng.shuffle(choices)
    letter = LETTERS[choices.index(answer)]
    listed = "\n".join(f"{LETTERS[k]}. {choice}" for k, choice in enumerate(choices))
    prompt = image_prompt(f"{question}\n{listed}\nAnswer with the option's letter.")
    return Draft(task, prompt, letter, [image], meta={"choices": choices, "answer_text": answer})


def _others(ctx: Context, pool: list[str], answer: str, k: int = 3) -> list[str]:
    rest = [item for item in pool if item != answer]
    return [answer, *ctx.rng.sample(rest, min(k, len(rest)))]


def food_chain(ctx: Context) -> Draft:
    """Organisms in boxes with arrows from food to eater, left to right or bottom to top."""
    rng, tier = ctx.rng, ctx.tier
    n = rng.randint(3, 5)
    chain = [rng.choice(level) for level in FOOD_LEVELS[:n]]
    size = font_size(ctx.base, 0.085)
    pad, gap = size // 2 + 2, max(18, size * 2)
    boxes_w = [text_width(size, name) + 2 * pad for name in chain]
    box_h = size + 2 * pad
    horizontal = n == 3 or rng.random() < 0.3  # long chains read bottom to top, to keep aspect ratios sane
    if horizontal:
        need = (sum(boxes_w) + gap * (n - 1) + 2 * pad, max(box_h + 2 * pad, 0.6 * ctx.base))
    else:
        need = (max(max(boxes_w) + 2 * pad, 0.75 * ctx.base), box_h * n + gap * (n - 1) + 2 * pad)
    width, height = ctx.at_least(*need, slack=(1.05, 1.5))
    image = Image.new("RGB", (width, height), jitter(rng, rng.choice(PAPERS), 6))
    draw = ImageDraw.Draw(image)
    fill = jitter(rng, rng.choice(((210, 235, 210), (250, 235, 200), (215, 225, 250), (240, 215, 235))), 15)
    boxes = []
    x = rng.uniform(0, width - need[0]) + pad
    y = rng.uniform(0, height - need[1]) + pad
    row_y = y - pad + need[1] * rng.uniform(0.3, 0.7)  # horizontal chains: the row's centre line
    for k, name in enumerate(chain):
        if horizontal:
            box = (x, row_y - box_h / 2, x + boxes_w[k], row_y + box_h / 2)
            x += boxes_w[k] + gap
        else:  # the producer at the bottom
            top = y + (n - 1 - k) * (box_h + gap)
            centre = x - pad + need[0] / 2
            box = (centre - boxes_w[k] / 2, top, centre + boxes_w[k] / 2, top + box_h)
        draw.rectangle(box, fill=fill, outline=INK)
        centred_text(draw, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), name, size, INK)
        boxes.append(box)
    for a, b in zip(boxes, boxes[1:], strict=False):
        if horizontal:
            arrow(draw, (a[2] + 2, (a[1] + a[3]) / 2), (b[0] - 2, (b[1] + b[3]) / 2), INK)
        else:
            arrow(draw, ((a[0] + a[2]) / 2, a[1] - 2), ((b[0] + b[2]) / 2, b[3] + 2), INK)

    if tier == 0:
        question, answer = "Which organism is the producer in this food chain?", chain[0]
    elif tier == 1 and rng.random() < 0.3:
        question, answer = "Which organism is at the top of this food chain?", chain[-1]
    elif tier == 1:
        k = rng.randrange(1, n)
        question, answer = f"In this food chain, what does the {chain[k]} eat?", chain[k - 1]
    else:
        k = rng.randrange(0, n - 1)
        question = f"If the {chain[k]} disappeared, which organism would lose its food?"
        answer = chain[k + 1]
    return multiple_choice(ctx, "food_chain", image, question, answer, _others(ctx, chain, answer))


def circuit(ctx: Context) -> Draft:
    """A battery, 1-3 bulbs and a switch, open or closed, on one loop of wire laid out at random."""
    rng, tier = ctx.rng, ctx.tier
    bulbs, closed = rng.randint(1, 3), rng.random() < 0.5
    width, height = ctx.size(width=(1.2, 1.8), height=(0.8, 1.3))
    paper = jitter(rng, rng.choice(PAPERS), 6)
    image = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(image)
    ink, wire, label = jitter(rng, INK, 15), max(2, ctx.base // 64), font_size(ctx.base, 0.075)
    left, right = round(width * rng.uniform(0.06, 0.22)), round(width * rng.uniform(0.72, 0.94))
    top, bottom = round(height * rng.uniform(0.2, 0.38)), round(height * rng.uniform(0.6, 0.8))
    draw.rectangle((left, top, right, bottom), outline=ink, width=wire)
    # the battery on a vertical side; bulbs on one horizontal side and the switch on the other
    battery_x = left if rng.random() < 0.5 else right
    battery_y = top + (bottom - top) * rng.uniform(0.35, 0.65)
    bulb_y, switch_y = (top, bottom) if rng.random() < 0.5 else (bottom, top)
    draw.rectangle((battery_x - wire, battery_y - 5, battery_x + wire, battery_y + 5), fill=paper)
    draw.line((battery_x - 12, battery_y - 6, battery_x + 12, battery_y - 6), fill=ink, width=2)
    draw.line((battery_x - 6, battery_y + 6, battery_x + 6, battery_y + 6), fill=ink, width=5)
    inside = 1 if battery_x == left else -1
    anchor = "lm" if inside == 1 else "rm"
    draw.text((battery_x + 16 * inside, battery_y), "battery", font=font(label), fill=ink, anchor=anchor)
    radius = max(7, round(min(width, height) * rng.uniform(0.05, 0.08)))
    for k in range(bulbs):
        cx = left + (right - left) * (k + 1) / (bulbs + 1)
        draw.ellipse(
            (cx - radius, bulb_y - radius, cx + radius, bulb_y + radius), fill=paper, outline=ink, width=2
        )
        d = radius * 0.7
        draw.line((cx - d, bulb_y - d, cx + d, bulb_y + d), fill=ink, width=2)
        draw.line((cx - d, bulb_y + d, cx + d, bulb_y - d), fill=ink, width=2)
    gap = max(14, (right - left) // 5)
    a = left + (right - left) * rng.uniform(0.3, 0.7) - gap / 2
    b = a + gap
    draw.rectangle((a, switch_y - wire, b, switch_y + wire), fill=paper)
    end = (b, switch_y) if closed else (a + gap * math.cos(0.6), switch_y - gap * math.sin(0.6))
    draw.line(((a, switch_y), end), fill=ink, width=wire)
    for px in (a, b):
        draw.ellipse((px - 3, switch_y - 3, px + 3, switch_y + 3), fill=ink)
    outside = 1 if switch_y == bottom else -1
    centred_text(draw, ((a + b) / 2, switch_y + outside * 0.9 * label), "switch", label, ink)

    if tier == 0:
        question, answer = "How many bulbs are in the circuit?", str(bulbs)
        options = _others(ctx, ["1", "2", "3", "4"], answer)
    elif tier == 1:
        question, answer, options = (
            "Is the switch open or closed?",
            "closed" if closed else "open",
            ["open", "closed"],
        )
    else:
        noun = "bulb" if bulbs == 1 else "bulbs"
        question, answer, options = f"Will the {noun} light up?", "yes" if closed else "no", ["yes", "no"]
    return multiple_choice(ctx, "circuit", image, question, answer, options)


def orbits(ctx: Context) -> Draft:
    """A star at the left edge with 2-5 named planets on circular orbits."""
    rng, tier = ctx.rng, ctx.tier
    n = rng.randint(2, 5) if tier == 0 else rng.randint(3, 5)
    names = rng.sample(PLANETS, n)
    width, height = ctx.size(width=(1.5, 2.0), height=(0.9, 1.3))
    sky = rng.choice(((15, 20, 45), (10, 10, 15), (35, 20, 50), (20, 35, 40)))
    image = Image.new("RGB", (width, height), jitter(rng, sky, 10))
    draw = ImageDraw.Draw(image)
    label = font_size(ctx.base, 0.08)
    cx, cy = width * rng.uniform(-0.06, 0.03), height * rng.uniform(0.3, 0.7)
    sun = height * rng.uniform(0.1, 0.22)
    draw.ellipse((cx - sun, cy - sun, cx + sun, cy + sun), fill=jitter(rng, (250, 200, 40)))
    inner, outer = rng.uniform(0.18, 0.3), rng.uniform(0.8, 0.88)
    radii = [width * (inner + (outer - inner) * (k + rng.uniform(0.1, 0.6)) / n) for k in range(n)]
    orbit = jitter(rng, (150, 150, 170), 25)
    room = {-1: cy - 1.8 * label, 1: height - cy - 1.8 * label}  # free height above and below the star
    for k, (name, r) in enumerate(zip(names, radii, strict=True)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=orbit)
        sign = 1 if k % 2 else -1  # alternate above and below, so neighbouring labels stay apart
        angle = sign * rng.uniform(0.3, 1.0) * math.asin(min(1.0, max(0.0, room[sign]) / r))
        px, py = cx + r * math.cos(angle), cy + r * math.sin(angle)
        dot = max(4, round(height * 0.035))
        draw.ellipse((px - dot, py - dot, px + dot, py + dot), fill=jitter(rng, (120, 180, 240), 40))
        centred_text(draw, (px, py + (dot + label * 0.7) * sign), name, label, (240, 240, 240))

    if tier == 0:
        question, answer = "How many planets orbit the star?", str(n)
        options = _others(ctx, [str(k) for k in range(2, 7)], answer)
    elif tier == 1:
        question, answer = "Which planet is closest to the star?", names[0]
        options = _others(ctx, names, answer)
    elif rng.random() < 0.5:
        question, answer = "Which planet is farthest from the star?", names[-1]
        options = _others(ctx, names, answer)
    else:
        question, answer = "Which planet is the second closest to the star?", names[1]
        options = _others(ctx, names, answer)
    return multiple_choice(ctx, "orbits", image, question, answer, options)


def plant(ctx: Context) -> Draft:
    """A plant with its four parts numbered 1-4; which part (tier 0) or what it does (tier 1)."""
    rng = ctx.rng
    width, height = ctx.size(width=(0.9, 1.4), height=(1.1, 1.6))
    image = Image.new("RGB", (width, height), jitter(rng, rng.choice(SKIES), 8))
    draw = ImageDraw.Draw(image)
    top, ground = height * rng.uniform(0.1, 0.22), height * rng.uniform(0.62, 0.78)
    span = ground - top
    draw.rectangle((0, ground, width, height), fill=jitter(rng, rng.choice(SOILS), 12))
    side = 1 if rng.random() < 0.5 else -1  # labels to the right (1) or to the left (-1) of the plant
    if rng.random() < 0.5:  # a sun in the corner away from the labels
        r, sx = min(width, height) * rng.uniform(0.06, 0.1), width / 2 - side * width * 0.38
        draw.ellipse((sx - r, top * 0.6 - r, sx + r, top * 0.6 + r), fill=jitter(rng, (250, 205, 40), 10))
    x = width / 2 - side * width * rng.uniform(0.05, 0.22)
    green = jitter(rng, (40, 140, 50), 20)
    draw.line((x, top, x, ground), fill=green, width=max(3, width // rng.randint(30, 45)))
    leaf_w, leaf_h = width * rng.uniform(0.1, 0.17), span * rng.uniform(0.05, 0.08)
    upper_side = rng.choice((1, -1))
    leaves = {upper_side: top + 0.35 * span, -upper_side: top + 0.55 * span}  # side -> centre height
    for leaf_side, leaf_y in leaves.items():
        tip = x + leaf_side * 2 * leaf_w
        draw.ellipse((min(x, tip), leaf_y - leaf_h, max(x, tip), leaf_y + leaf_h), fill=green)
    petal = min(width, height) * rng.uniform(0.035, 0.06)
    flower = jitter(rng, rng.choice(((230, 60, 120), (240, 200, 40), (150, 80, 200), (240, 120, 40))), 20)
    for k in range(rng.randint(5, 7)):
        a = k * 2 * math.pi / 6
        px, py = x + petal * math.cos(a), top + petal * math.sin(a)
        draw.ellipse((px - petal * 0.7, py - petal * 0.7, px + petal * 0.7, py + petal * 0.7), fill=flower)
    draw.ellipse(
        (x - petal * 0.5, top - petal * 0.5, x + petal * 0.5, top + petal * 0.5), fill=(250, 210, 40)
    )
    root_end = ground + (height - ground) * rng.uniform(0.55, 0.8)
    for dx in rng.sample((-0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12), rng.randint(3, 5)):
        draw.line((x, ground, x + dx * width, root_end), fill=(90, 60, 30), width=2)

    parts = {  # where each part's leader line starts
        "flower": (x + side * petal, top),
        "leaf": (x + side * 1.6 * leaf_w, leaves[side]),
        "stem": (x, top + 0.8 * span),
        "root": (x + side * 0.03 * width, ground + (root_end - ground) * 0.5),
    }
    order = list(PLANT_PARTS)
    rng.shuffle(order)
    label = font_size(ctx.base, 0.09)
    margin_x = width - 1.3 * label if side == 1 else 1.3 * label
    for number, part in enumerate(order, start=1):
        px, py = parts[part]
        draw.line((px, py, margin_x, py), fill=INK, width=1)
        centred_text(draw, (margin_x + side * 0.6 * label, py), str(number), label, INK)
    number = rng.randint(1, 4)
    part = order[number - 1]
    if ctx.tier == 0:
        question, answer, options = f"Which part of the plant is labelled {number}?", part, order
    else:
        question = f"What does the part of the plant labelled {number} do?"
        answer, options = PLANT_PARTS[part], list(PLANT_PARTS.values())
    return multiple_choice(ctx, "plant_parts", image, question, answer, options)
