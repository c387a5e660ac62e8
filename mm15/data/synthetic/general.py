"""`syn_general`: questions about scenes of shapes (colour, shape, counting, spatial relations)."""

from __future__ import annotations

from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.drawing import SHAPES
from mm15.data.synthetic.scenes import COLOUR_NAMES, Scene, Shape, random_kind_colour, random_scene

COLOUR_QUESTIONS = ("What colour is the shape?", "What color is the shape?", "Name the colour of the object.")
SHAPE_QUESTIONS = ("What shape is this?", "Is the shape a circle, a square or a triangle?", "Name the shape.")
COUNT_QUESTIONS = ("How many shapes are there?", "How many objects are in the image?", "Count the shapes.")
ONE_WORD = " Answer with one word."
NUMBER = " Answer with a number."


def general(ctx: Context) -> Draft:
    rng = ctx.rng
    tasks = {
        0: (single_colour, single_shape, count_all),
        1: (count_all, colour_of_kind, spatial),
        2: (count_filtered, spatial),
    }[ctx.tier]
    return rng.choice(tasks)(ctx)


def single_colour(ctx: Context) -> Draft:
    scene = random_scene(ctx.rng, ctx.size(), 1, 1, scale=(0.4, 0.8))
    question = ctx.rng.choice(COLOUR_QUESTIONS) + ONE_WORD
    return _draft(ctx, "color", scene, question, scene.shapes[0].colour)


def single_shape(ctx: Context) -> Draft:
    scene = random_scene(ctx.rng, ctx.size(), 1, 1, scale=(0.4, 0.8))
    question = ctx.rng.choice(SHAPE_QUESTIONS) + ONE_WORD
    return _draft(ctx, "shape", scene, question, scene.shapes[0].kind)


def count_all(ctx: Context) -> Draft:
    """Tier 0: 1-3 large shapes; tier 1: 1-6 medium ones."""
    rng = ctx.rng
    n, cells, scale = (
        (rng.randint(1, 3), 4, (0.6, 0.9)) if ctx.tier == 0 else (rng.randint(1, 6), 9, (0.55, 0.9))
    )
    scene = random_scene(rng, ctx.size(), n, cells, scale)
    return _draft(ctx, "count", scene, rng.choice(COUNT_QUESTIONS) + NUMBER, str(n))


def count_filtered(ctx: Context) -> Draft:
    """Up to 10 shapes; count those of one colour, one kind, or both, among distractors."""
    rng = ctx.rng
    scene = random_scene(rng, ctx.size(), rng.randint(4, 10), 16, scale=(0.6, 0.95))
    kind, colour = scene.shapes[0].kind, scene.shapes[0].colour  # a filter that matches at least one
    rule = rng.choice(("kind", "colour", "both"))
    if rule == "kind":
        noun, match = f"{kind}s", lambda shape: shape.kind == kind
    elif rule == "colour":
        noun, match = f"{colour} shapes", lambda shape: shape.colour == colour
    else:
        noun, match = f"{colour} {kind}s", lambda shape: shape.name == f"{colour} {kind}"
    count = sum(match(shape) for shape in scene.shapes)
    question = rng.choice((f"How many {noun} are there?", f"Count the {noun}.")) + NUMBER
    return _draft(ctx, "count", scene, question, str(count))


def colour_of_kind(ctx: Context) -> Draft:
    """2-3 shapes of distinct kinds; the colour of the named one."""
    rng = ctx.rng
    kinds = rng.sample(SHAPES, rng.randint(2, 3))
    scene = random_scene(rng, ctx.size(), len(kinds), 4)
    scene.shapes = [
        Shape(kind, rng.choice(COLOUR_NAMES), s.box) for kind, s in zip(kinds, scene.shapes, strict=True)
    ]
    target = rng.choice(scene.shapes)
    question = rng.choice((f"What colour is the {target.kind}?", f"What is the color of the {target.kind}?"))
    return _draft(ctx, "color", scene, question + ONE_WORD, target.colour)


def spatial(ctx: Context) -> Draft:
    """Is shape A left of / right of / above / below shape B? Both are unique by colour and kind."""
    rng = ctx.rng
    n = 2 if ctx.tier == 1 else rng.randint(3, 6)
    scene = random_scene(rng, ctx.size(), n, 4 if n == 2 else 9)
    a = Shape(*random_kind_colour(rng), scene.shapes[0].box)
    b = Shape(*random_kind_colour(rng, {(a.kind, a.colour)}), scene.shapes[1].box)
    others = [
        Shape(*random_kind_colour(rng, {(a.kind, a.colour), (b.kind, b.colour)}), s.box)
        for s in scene.shapes[2:]
    ]
    scene.shapes = [a, b, *others]
    relations = _relations(a, b)
    relation = rng.choice(sorted(relations))
    question = f"Is the {a.name} {relation} the {b.name}? Answer yes or no."
    return _draft(ctx, "spatial", scene, question, "yes" if relations[relation] else "no")


def _relations(a: Shape, b: Shape) -> dict[str, bool]:
    """Relations with a clear answer: asked only along an axis where the boxes do not overlap."""
    relations = {}
    if a.box[2] <= b.box[0] or b.box[2] <= a.box[0]:
        relations["left of"] = a.box[2] <= b.box[0]
        relations["right of"] = b.box[2] <= a.box[0]
    if a.box[3] <= b.box[1] or b.box[3] <= a.box[1]:
        relations["above"] = a.box[3] <= b.box[1]
        relations["below"] = b.box[3] <= a.box[1]
    return relations


def _draft(ctx: Context, task: str, scene: Scene, question: str, answer: str) -> Draft:
    return Draft(task, image_prompt(question), answer, [scene.render(ctx.rng)])
