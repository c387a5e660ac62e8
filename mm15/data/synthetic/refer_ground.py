"""`syn_refer_ground`: grounding (answer with a box) and referring (a box or point in the prompt).

Coordinates are integers in [0, 1000) over the whole image, Ferret style: `[x1, y1, x2, y2]`, `[x, y]`.
"""

from __future__ import annotations

from mm15.data.record import Box
from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.drawing import XYXY
from mm15.data.synthetic.scenes import Shape, random_kind_colour, random_scene

GROUND = (
    "Where is the {name}? Answer with a box.",
    "Find the {name}. Answer with a bounding box [x1, y1, x2, y2].",
    "Give the bounding box of the {name}.",
)
REFER_BOX = ("What colour is the object at {region}?", "What is the colour of the shape in {region}?")
REFER_POINT = ("What shape is at {region}?", "Which shape is at the point {region}?")
REFER_BOX_KIND = ("What shape is in the region {region}?",)
REFER_POINT_COLOUR = ("What colour is the shape at the point {region}?",)


def to_thousandths(value: float, extent: int) -> int:
    """A pixel coordinate as an integer in [0, 1000) of the image's extent."""
    return min(999, max(0, int(value * 1000 / extent)))


def box_text(box: list[int]) -> str:
    return "[" + ", ".join(str(v) for v in box) + "]"


def normalised_box(box: XYXY, size: tuple[int, int]) -> list[int]:
    w, h = size
    return [
        to_thousandths(box[0], w),
        to_thousandths(box[1], h),
        to_thousandths(box[2], w),
        to_thousandths(box[3], h),
    ]


def refer_ground(ctx: Context) -> Draft:
    return (ground, ground, refer)[ctx.tier](ctx)


def ground(ctx: Context) -> Draft:
    """Tier 0: one large object alone; tier 1: one object among 2-5 distractors, unique by colour and kind."""
    rng = ctx.rng
    if ctx.tier == 0:
        scene = random_scene(rng, ctx.size(), 1, 1, scale=(0.45, 0.9))
    else:
        scene = random_scene(rng, ctx.size(), rng.randint(3, 6), 9)
        target = scene.shapes[0]
        taken = {(target.kind, target.colour)}
        scene.shapes[1:] = [Shape(*random_kind_colour(rng, taken), s.box) for s in scene.shapes[1:]]
    target = scene.shapes[0]
    answer_box = normalised_box(target.box, scene.size)
    question = rng.choice(GROUND).format(name=target.name)
    return Draft(
        "ground",
        image_prompt(question),
        box_text(answer_box),
        [scene.render(rng)],
        boxes=[Box(0, *target.box)],
        meta={"answer_box": answer_box},
    )


def refer(ctx: Context) -> Draft:
    """3-6 objects; the prompt points at one by box or point and asks its colour or kind."""
    rng = ctx.rng
    scene = random_scene(rng, ctx.size(), rng.randint(3, 6), 9)
    target = rng.choice(scene.shapes)
    by_point, ask_colour = rng.random() < 0.5, rng.random() < 0.5
    if by_point:
        # the box centre lies inside all three shapes (a triangle's is halfway up its height)
        cx, cy = target.centre
        region = [to_thousandths(cx, scene.size[0]), to_thousandths(cy, scene.size[1])]
        templates = REFER_POINT_COLOUR if ask_colour else REFER_POINT
    else:
        region = normalised_box(target.box, scene.size)
        templates = REFER_BOX if ask_colour else REFER_BOX_KIND
    question = rng.choice(templates).format(region=box_text(region)) + " Answer with one word."
    return Draft(
        "refer",
        image_prompt(question),
        target.colour if ask_colour else target.kind,
        [scene.render(rng)],
        boxes=[Box(0, *target.box)],
        meta={"region": region},
    )
