"""Per-sample metrics (floats in [0, 1]), the metric registry, category averages and MMBase.

The definitions reproduce the public harnesses (docs/RECIPE.md section 6):
- `anls`: lmms-eval's `anls` metric (DocVQA, InfoVQA), itself Qwen-VL's `infographicsvqa_eval.py`;
- `vqa_accuracy`: the official VQA v2 `vqaEval.py` normalisation and 10-choose-9 averaging (TextVQA, VQAv2);
- `relaxed_accuracy`: lmms-eval's ChartQA `relaxed_correctness` (from Qwen-VL), 5% relative tolerance;
- `grounding_accuracy`: IoU > 0.5 of the first box of the answer (Refer&Ground).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence

from mm15.eval.parsing import clean_generation, extract_choice, normalize_vqa_answer
from mm15.model.grounding import parse_boxes, text_to_boxes

ANLS_THRESHOLD = 0.5
RELAXED_MAX_CHANGE = 0.05
IOU_THRESHOLD = 0.5
MMBASE_CATEGORIES = ("general", "text_rich", "knowledge")


def _as_list(answers: str | Sequence[str]) -> list[str]:
    return [answers] if isinstance(answers, str) else list(answers)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each 1), two rows of O(len(b)) memory."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(prediction: str, answers: str | Sequence[str]) -> float:
    """Average Normalized Levenshtein Similarity of one sample, exactly as lmms-eval computes it.

    Both strings are lower-cased and whitespace-collapsed (`" ".join(s.strip().lower().split())`) for the
    distance, but the denominator is the length of the *raw* strings, `max(len(answer.upper()),
    len(prediction.upper()))`, as in the reference (so padding whitespace lowers the distance). The score is
    `1 - min(distance / length)` over the answers, set to 0 when below 0.5 (exactly 0.5 is kept); an empty
    pair counts distance 0. No answers -> 0.0; a single string is taken as one answer.
    """
    answers = _as_list(answers)
    if not answers:
        return 0.0
    pred = " ".join(prediction.strip().lower().split())
    distances = []
    for answer in answers:
        gt = " ".join(answer.strip().lower().split())
        length = max(len(answer.upper()), len(prediction.upper()))
        distances.append(0.0 if length == 0 else levenshtein(gt, pred) / length)
    value = 1 - min(distances)
    return 0.0 if value < ANLS_THRESHOLD else float(value)


def vqa_accuracy(prediction: str, answers: str | Sequence[str]) -> float:
    """VQA accuracy: the official normalisation (`normalize_vqa_answer`) of the prediction and of every answer,
    then for each answer left out, `min(1, matches among the others / 3)`, averaged over the answers.

    With 10 answers this is the official 10-choose-9 average. One answer: leaving it out leaves nothing to
    match, so the score is instead 1.0 when the normalised strings are equal, else 0.0. No answers -> 0.0.
    """
    answers = _as_list(answers)
    if not answers:
        return 0.0
    pred = normalize_vqa_answer(prediction)
    gts = [normalize_vqa_answer(a) for a in answers]
    if len(gts) == 1:
        return float(gts[0] == pred)
    matches = sum(gt == pred for gt in gts)
    # leaving out answer i: the others hold `matches - 1` matches when answer i matched, else `matches`
    accs = [min(1.0, (matches - (gt == pred)) / 3) for gt in gts]
    return sum(accs) / len(accs)


def _to_float(text: str) -> float | None:
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_accuracy(prediction: str, answer: str) -> float:
    """ChartQA relaxed correctness: when both parse as numbers (Python `float`, a trailing "%" divides by 100,
    so "1,000" and "$12" do not parse) and the target is non-zero, correct within 5% relative change
    (inclusive); otherwise a case-insensitive exact match, with no stripping."""
    pred, target = _to_float(prediction), _to_float(answer)
    if pred is not None and target:
        return float(abs(pred - target) / abs(target) <= RELAXED_MAX_CHANGE)
    return float(prediction.lower() == answer.lower())


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two `[x1, y1, x2, y2]` boxes in continuous coordinates (area = w * h, no +1);
    0.0 when they do not overlap or the union is empty."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = max(0.0, ax2 - ax1) * max(0.0, ay2 - ay1) + max(0.0, bx2 - bx1) * max(0.0, by2 - by1) - inter
    return inter / union if inter > 0 and union > 0 else 0.0


def grounding_accuracy(
    prediction: str, box: Sequence[float], width: int | None = None, height: int | None = None
) -> float:
    """1.0 when the first box written in the answer has IoU > 0.5 (strictly) with the target `box`, else 0.0.

    Boxes are read with the project's grounding convention (`mm15.model.grounding`): `[x1, y1, x2, y2]`,
    integers in [0, 1000) over the whole image; the first *valid* one counts (a "box" with a value >= 1000 is
    not one). The target is in that same [0, 1000) grid when `width`/`height` are omitted; given both, the
    target is in pixels and the answer's box is mapped to pixels (bucket centres, `text_to_boxes`). An answer
    without a box scores 0.0.
    """
    if (width is None) != (height is None):
        raise ValueError("grounding_accuracy needs both width and height, or neither")
    if width is None or height is None:
        boxes: list[tuple[float, float, float, float]] = [
            tuple(map(float, b)) for b in parse_boxes(prediction)
        ]
    else:
        boxes = text_to_boxes(prediction, width, height)
    return float(bool(boxes) and box_iou(boxes[0], box) > IOU_THRESHOLD)


def _choice_index(answer: str | int, options: Sequence[str]) -> int:
    """The 0-based index an answer names: an int index, a single letter ("B"/"b"), or an option's text."""
    n = len(options)
    if isinstance(answer, int) and not isinstance(answer, bool):
        index = answer
    elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha():
        index = ord(answer.strip().upper()) - ord("A")
    else:
        texts = [o.strip().lower() for o in options]
        key = str(answer).strip().lower()
        index = texts.index(key) if key in texts else -1
    if not 0 <= index < n:
        raise ValueError(f"answer {answer!r} names none of the {n} options")
    return index


def multiple_choice_accuracy(prediction: str, options: Sequence[str], answer: str | int) -> float:
    """1.0 when the choice extracted from the answer (`extract_choice`) is the right one. `answer` is the
    0-based index, the letter or the option's text; one naming no option raises ValueError."""
    return float(extract_choice(prediction, options) == _choice_index(answer, options))


_STRIP = string.punctuation + string.whitespace


def _normalize_exact(text: str) -> str:
    return " ".join(text.lower().split()).strip(_STRIP)


def exact_match(prediction: str, answer: str | Sequence[str]) -> float:
    """Case-insensitive, whitespace-collapsed match with surrounding punctuation stripped; a list: any."""
    answers = _as_list(answer)
    pred = _normalize_exact(prediction)
    return float(any(pred == _normalize_exact(a) for a in answers))


# ---------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------


def _ref(refs: Mapping, key: str):
    if key not in refs:
        raise ValueError(f"sample references lack {key!r} (have {sorted(refs)})")
    return refs[key]


def _answers(refs: Mapping) -> list[str]:
    return _as_list(_ref(refs, "answers"))


def _relaxed(prediction: str, refs: Mapping) -> float:
    return max((relaxed_accuracy(prediction, a) for a in _answers(refs)), default=0.0)


def _grounding(prediction: str, refs: Mapping) -> float:
    return grounding_accuracy(prediction, _ref(refs, "box"), refs.get("width"), refs.get("height"))


def _multiple_choice(prediction: str, refs: Mapping) -> float:
    answer = refs["answer"] if "answer" in refs else _answers(refs)[0]
    return multiple_choice_accuracy(prediction, _ref(refs, "options"), answer)


METRICS: dict[str, Callable[[str, Mapping], float]] = {
    "anls": lambda prediction, refs: anls(prediction, _answers(refs)),
    "vqa_accuracy": lambda prediction, refs: vqa_accuracy(prediction, _answers(refs)),
    "relaxed_accuracy": _relaxed,
    "grounding": _grounding,
    "multiple_choice": _multiple_choice,
    "exact_match": lambda prediction, refs: exact_match(prediction, _answers(refs)),
}


def score(metric: str, prediction: str, refs: Mapping, *, clean: bool = True) -> float:
    """One sample's score under `metric` (a key of METRICS).

    `refs` holds `answers` (list[str]) and, per metric, `box` (+ optional `width`/`height`) for grounding,
    `options` (+ optional `answer`: index, letter or text, else `answers[0]`) for multiple choice.
    `relaxed_accuracy` takes the best over `answers`. The prediction goes through `clean_generation` first
    unless `clean=False`.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    return METRICS[metric](clean_generation(prediction) if clean else prediction, refs)


# ---------------------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------------------


def category_averages(
    benchmark_scores: Mapping[str, float], benchmark_categories: Mapping[str, str | None]
) -> dict[str, float]:
    """Unweighted mean of benchmark scores per category (in first-seen order); benchmarks whose category is
    None are skipped, a scored benchmark missing from `benchmark_categories` raises ValueError."""
    groups: dict[str, list[float]] = {}
    for name, value in benchmark_scores.items():
        if name not in benchmark_categories:
            raise ValueError(f"benchmark {name!r} has no category entry (None to leave it out)")
        category = benchmark_categories[name]
        if category is not None:
            groups.setdefault(category, []).append(float(value))
    return {category: sum(values) / len(values) for category, values in groups.items()}


def mmbase(categories: Mapping[str, float]) -> float | None:
    """MMBase = mean of the general, text_rich and knowledge category averages; None when one is missing."""
    if any(c not in categories for c in MMBASE_CATEGORIES):
        return None
    return sum(categories[c] for c in MMBASE_CATEGORIES) / len(MMBASE_CATEGORIES)


def to_percent(x: float) -> float:
    """A [0, 1] score on the reported 0-100 scale, rounded to 2 decimals."""
    return round(100.0 * x, 2)
