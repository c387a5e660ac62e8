"""`syn_multi_image`: 2-4 scenes per sample; comparisons and reasoning across images."""

from __future__ import annotations

from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.scenes import Scene, Shape, random_kind_colour, random_scene

NUMBER = " Answer with the image number."


def multi_image(ctx: Context) -> Draft:
    tasks = {0: (same_colour, same_shape), 1: (most_shapes,), 2: (find_image, total_count)}[ctx.tier]
    return ctx.rng.choice(tasks)(ctx)


def same_colour(ctx: Context) -> Draft:
    """Two images of one large shape each: same colour or not (half the time)."""
    rng = ctx.rng
    scenes = [random_scene(rng, ctx.size(), 1, 1, (0.4, 0.8)) for _ in range(2)]
    if rng.random() < 0.5:
        first = scenes[0].shapes[0]
        scenes[1].shapes = [Shape(scenes[1].shapes[0].kind, first.colour, scenes[1].shapes[0].box)]
    same = scenes[0].shapes[0].colour == scenes[1].shapes[0].colour
    question = "Do both images show a shape of the same colour? Answer yes or no."
    return _draft(ctx, "same_color", scenes, question, "yes" if same else "no")


def same_shape(ctx: Context) -> Draft:
    rng = ctx.rng
    scenes = [random_scene(rng, ctx.size(), 1, 1, (0.4, 0.8)) for _ in range(2)]
    if rng.random() < 0.5:
        first = scenes[0].shapes[0]
        scenes[1].shapes = [Shape(first.kind, scenes[1].shapes[0].colour, scenes[1].shapes[0].box)]
    same = scenes[0].shapes[0].kind == scenes[1].shapes[0].kind
    question = "Do the two images show the same kind of shape? Answer yes or no."
    return _draft(ctx, "same_shape", scenes, question, "yes" if same else "no")


def most_shapes(ctx: Context) -> Draft:
    """2-3 images with 1-6 shapes each and a unique largest count."""
    rng = ctx.rng
    n_images = rng.randint(2, 3)
    counts = rng.sample(range(1, 7), n_images)  # distinct, so the largest is unique
    scenes = [random_scene(rng, ctx.size(), count, 9) for count in counts]
    question = rng.choice(
        ("Which image has the most shapes?", "Which image shows more shapes than the others?")
    )
    return _draft(ctx, "more_shapes", scenes, question + NUMBER, str(counts.index(max(counts)) + 1))


def find_image(ctx: Context) -> Draft:
    """3-4 images of 2-4 shapes; exactly one of them holds the named shape."""
    rng = ctx.rng
    n_images = rng.randint(3, 4)
    target = random_kind_colour(rng)
    scenes = [random_scene(rng, ctx.size(), rng.randint(2, 4), 6) for _ in range(n_images)]
    for scene in scenes:
        scene.shapes = [Shape(*random_kind_colour(rng, {target}), s.box) for s in scene.shapes]
    answer = rng.randrange(n_images)
    first = scenes[answer].shapes[0]
    scenes[answer].shapes[0] = Shape(*target, first.box)
    question = f"Which image contains a {target[1]} {target[0]}?"
    return _draft(ctx, "find_image", scenes, question + NUMBER, str(answer + 1))


def total_count(ctx: Context) -> Draft:
    rng = ctx.rng
    scenes = [random_scene(rng, ctx.size(), rng.randint(1, 4), 4) for _ in range(rng.randint(2, 3))]
    total = sum(len(scene.shapes) for scene in scenes)
    question = "How many shapes are there in all the images together? Answer with a number."
    return _draft(ctx, "total_count", scenes, question, str(total))


def _draft(ctx: Context, task: str, scenes: list[Scene], question: str, answer: str) -> Draft:
    images = [scene.render(ctx.rng) for scene in scenes]
    return Draft(task, image_prompt(question, len(images)), answer, images)
