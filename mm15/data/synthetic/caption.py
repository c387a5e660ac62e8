"""`syn_caption`: scenes of shapes described in one sentence, a stand-in for caption pretraining data."""

from __future__ import annotations

from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.scenes import (
    NUMBER_WORDS,
    article,
    count_phrase,
    join_words,
    left_to_right,
    random_scene,
)

PROMPTS = (
    "Describe the image.",
    "Write a caption for the image.",
    "What is in this picture?",
    "Describe the scene.",
)


def caption(ctx: Context) -> Draft:
    """Tier 0: one shape; tier 1: 2-3 shapes from left to right; tier 2: 4-7 shapes counted by kind."""
    rng, tier = ctx.rng, ctx.tier
    n = (1, rng.randint(2, 3), rng.randint(4, 7))[tier]
    scene = random_scene(
        rng, ctx.size(), n, (1, 4, 9)[tier], scale=((0.4, 0.8), (0.55, 0.9), (0.6, 0.95))[tier]
    )
    ground = f"on {article(scene.background)} {scene.background} background"
    names = [shape.name for shape in left_to_right(scene.shapes)]
    if tier == 0:
        text = f"{article(names[0]).capitalize()} {names[0]} {ground}."
    elif tier == 1:
        text = f"From left to right, {join_words([f'{article(name)} {name}' for name in names])}, {ground}."
    else:
        counts = {name: names.count(name) for name in names}  # first-seen order, left to right
        groups = join_words([count_phrase(count, name) for name, count in counts.items()])
        text = f"{NUMBER_WORDS[n].capitalize()} shapes {ground}: {groups}."
    return Draft("caption", image_prompt(rng.choice(PROMPTS)), text, [scene.render(rng)])
