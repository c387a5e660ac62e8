"""`syn_text_only`: instructions without images: word problems, reversing strings, sorting, facts.

Text-only questions come from small spaces, so train and eval are kept apart by construction: a
question belongs to the split its stable hash names, and other draws are discarded.
"""

from __future__ import annotations

import hashlib

from mm15.data.synthetic.context import Context, Draft
from mm15.data.synthetic.words import SHORT_WORDS, WORDS

PEOPLE = ("Tom", "Ana", "Lee", "Mia", "Sam", "Kai", "Ravi", "Zoe", "Omar", "Lena", "Ivan", "Nia")
THINGS = ("apples", "pencils", "stickers", "marbles", "books", "cards", "shells", "coins")
FACTS = (  # question template, multiplier
    ("How many days are in {n} weeks?", 7),
    ("How many minutes are in {n} hours?", 60),
    ("How many legs do {n} spiders have?", 8),
    ("How many wheels do {n} bicycles have?", 2),
    ("How many months are in {n} years?", 12),
    ("How many sides do {n} triangles have in total?", 3),
)
_THREE_LETTERS = tuple(word for word in SHORT_WORDS if len(word) == 3)
_FOUR_TO_SIX = tuple(word for word in WORDS if 4 <= len(word) <= 6)


def text_only(ctx: Context) -> Draft:
    tasks = {0: (add, reverse, sort_numbers), 1: (word_problem, fact, reverse, sort_numbers)}
    choices = tasks.get(ctx.tier, (two_step_problem, reverse, sort_numbers))
    for _ in range(200):
        draft = ctx.rng.choice(choices)(ctx)
        if split_of(draft.prompt) == ctx.split:
            return draft
    raise RuntimeError("no text-only question drawn for this split")  # ~2**-200 odds


def split_of(question: str) -> str:
    return ("train", "eval")[hashlib.blake2b(question.encode(), digest_size=1).digest()[0] % 2]


def add(ctx: Context) -> Draft:
    a, b = ctx.rng.randint(0, 50), ctx.rng.randint(0, 50)
    question = ctx.rng.choice((f"What is {a} plus {b}?", f"Compute {a} + {b}.", f"Add {a} and {b}."))
    return Draft("arithmetic", question, str(a + b))


def word_problem(ctx: Context) -> Draft:
    rng = ctx.rng
    person, thing = rng.choice(PEOPLE), rng.choice(THINGS)
    a, b = rng.randint(2, 30), rng.randint(1, 20)
    if rng.random() < 0.5:
        text = f"{person} has {a} {thing} and gets {b} more. How many {thing} does {person} have now?"
        return Draft("word_problem", text, str(a + b))
    a += b
    text = f"{person} has {a} {thing} and gives away {b}. How many {thing} does {person} have left?"
    return Draft("word_problem", text, str(a - b))


def two_step_problem(ctx: Context) -> Draft:
    rng = ctx.rng
    person, thing = rng.choice(PEOPLE), rng.choice(THINGS)
    boxes, each = rng.randint(2, 9), rng.randint(2, 12)
    lost = rng.randint(0, boxes * each)
    text = (
        f"{person} buys {boxes} boxes with {each} {thing} in each box, then gives away {lost} {thing}. "
        f"How many {thing} does {person} have?"
    )
    return Draft("word_problem", text, str(boxes * each - lost))


def fact(ctx: Context) -> Draft:
    template, per_unit = ctx.rng.choice(FACTS)
    n = ctx.rng.randint(2, 12)
    return Draft("fact", template.format(n=n), str(n * per_unit))


def reverse(ctx: Context) -> Draft:
    rng, tier = ctx.rng, ctx.tier
    if tier == 0:
        text = rng.choice(_THREE_LETTERS)
    elif tier == 1:
        text = rng.choice(_FOUR_TO_SIX)
    else:
        text = " ".join(rng.sample(SHORT_WORDS, 2))
    question = rng.choice((f"Reverse the string '{text}'.", f"Write '{text}' backwards."))
    return Draft("reverse", question, text[::-1])


def sort_numbers(ctx: Context) -> Draft:
    rng, tier = ctx.rng, ctx.tier
    numbers = rng.sample(range(100), (3, 5, 7)[tier])
    descending = tier == 2 and rng.random() < 0.5
    order = "descending" if descending else "ascending"
    question = f"Sort these numbers in {order} order: {', '.join(map(str, numbers))}."
    return Draft("sort", question, ", ".join(map(str, sorted(numbers, reverse=descending))))
