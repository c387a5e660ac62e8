import pytest

from mm15.eval.metrics import (
    METRICS,
    anls,
    box_iou,
    category_averages,
    exact_match,
    grounding_accuracy,
    levenshtein,
    mmbase,
    multiple_choice_accuracy,
    relaxed_accuracy,
    score,
    to_percent,
    vqa_accuracy,
)
from mm15.eval.parsing import VQA_CONTRACTIONS, clean_generation, extract_choice, normalize_vqa_answer
from mm15.model.tokenizer import SPECIAL


def test_levenshtein():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("flaw", "lawn") == 2
    assert levenshtein("", "abc") == levenshtein("abc", "") == 3
    assert levenshtein("same", "same") == 0


def test_anls_exact_near_threshold_case_whitespace():
    assert anls("Paris", ["paris"]) == 1.0  # case
    assert anls("  New   York ", ["new york"]) == 1.0  # whitespace collapsed
    assert anls("Londn", ["London"]) == 1 - 1 / 6  # one edit over 6 characters
    assert anls("color", ["shade", "colour"]) == 1 - 1 / 6  # best answer
    assert anls("ab", ["ax"]) == 0.5  # similarity exactly 0.5 is kept (lmms-eval zeroes only below 0.5)
    assert anls("abcde", ["abxyz"]) == 0.0  # similarity 0.4 < 0.5
    assert anls("abc", ["xyz"]) == 0.0
    # lmms-eval divides by the raw lengths: 1 edit / len("hellx   ") = 8
    assert anls("hellx   ", ["Hello"]) == 1 - 1 / 8
    assert anls("", [""]) == 1.0
    assert anls("anything", []) == 0.0
    assert anls("Paris", "paris") == 1.0  # a single string is one answer, not a list of characters


def test_vqa_normalisation():
    assert normalize_vqa_answer("yes.") == "yes"
    assert normalize_vqa_answer("3,000") == "3000"  # digit,digit comma: marks are deleted, digits stay joined
    assert normalize_vqa_answer("1,000 people") == "1000 people"
    assert normalize_vqa_answer("3.5") == "3.5"  # a period before a digit stays
    assert normalize_vqa_answer("red, white") == "red white"
    assert normalize_vqa_answer("Hello!World") == "hello world"  # no space around "!": becomes a space
    assert normalize_vqa_answer("a dog") == normalize_vqa_answer("The dog") == "dog"
    assert normalize_vqa_answer("Two") == "2" and normalize_vqa_answer("none") == "0"
    assert normalize_vqa_answer("dont") == normalize_vqa_answer("don't") == "don't"
    assert normalize_vqa_answer("whats up") == "what's up"
    assert normalize_vqa_answer("Im") == "im"  # the script's key is "Im": never matches lower-cased words
    assert normalize_vqa_answer("yes\n\tplease ") == "yes please"
    assert len(VQA_CONTRACTIONS) == 120
    assert VQA_CONTRACTIONS["somebody'd"] == "somebodyd" and VQA_CONTRACTIONS["yall'd've"] == "y'all'd've"


def test_vqa_accuracy_leave_one_out_averaging():
    assert vqa_accuracy("yes.", ["yes"] * 10) == 1.0
    assert vqa_accuracy("a dog", ["dog"] * 10) == 1.0
    assert vqa_accuracy("two", ["2"] * 10) == 1.0
    assert vqa_accuracy("dont", ["don't"] * 10) == 1.0
    assert vqa_accuracy("3,000", ["3000"] * 10) == 1.0
    assert vqa_accuracy("dog", ["dog"] * 4 + ["cat"] * 6) == 1.0  # >= 3 matches in every subset
    # 3 matches: the 3 subsets leaving one out hold 2 -> 2/3, the 7 others hold 3 -> 1
    assert vqa_accuracy("dog", ["dog"] * 3 + ["cat"] * 7) == pytest.approx(0.9, abs=1e-12)
    # 2 matches: 2 subsets hold 1 -> 1/3, 8 subsets hold 2 -> 2/3; (2/3 + 16/3) / 10 = 0.6
    assert vqa_accuracy("dog", ["cat", "dog"] + ["cat"] * 7 + ["dog"]) == pytest.approx(0.6, abs=1e-12)
    assert vqa_accuracy("dog", ["dog"] + ["cat"] * 9) == pytest.approx(0.3, abs=1e-12)
    assert vqa_accuracy("dog", ["cat"] * 10) == 0.0
    assert vqa_accuracy("Two", ["2"]) == 1.0 and vqa_accuracy("3", ["2"]) == 0.0  # one answer: equality
    assert vqa_accuracy("dog", []) == 0.0


def test_relaxed_accuracy():
    assert relaxed_accuracy("104", "100") == 1.0  # 4% off
    assert relaxed_accuracy("105", "100") == 1.0  # exactly 5%: inclusive
    assert relaxed_accuracy("95", "100") == 1.0
    assert relaxed_accuracy("106", "100") == 0.0  # 6% off
    assert relaxed_accuracy("94", "100") == 0.0
    assert relaxed_accuracy("12%", "0.12") == 1.0  # a percentage is divided by 100
    assert relaxed_accuracy("1,000", "1000") == 0.0  # does not parse: string compare
    assert relaxed_accuracy("1,000", "1,000") == 1.0
    assert relaxed_accuracy("$12", "12") == 0.0
    assert relaxed_accuracy("0.0", "0") == 0.0  # target 0: exact string match only
    assert relaxed_accuracy("0", "0") == 1.0
    assert relaxed_accuracy("Yes", "yes") == 1.0
    assert relaxed_accuracy(" yes", "yes") == 0.0  # no stripping
    assert relaxed_accuracy(" 104\n", "100") == 1.0  # but Python's float() itself ignores surrounding spaces


def test_box_iou():
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == 50 / 150
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou([0, 0, 10, 10], [2, 2, 7, 7]) == 0.25  # contained: 25 / 100
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching edges
    assert box_iou([0, 0, 0, 10], [0, 0, 0, 10]) == 0.0  # degenerate
    assert box_iou([0.5, 0.5, 1.5, 1.5], [0.5, 0.5, 1.0, 1.5]) == 0.5


def test_grounding_accuracy():
    target = (100, 200, 300, 400)
    assert grounding_accuracy("The box is [100, 200, 300, 400].", target) == 1.0
    assert grounding_accuracy("[100,200,300,400]<|end|>", [110, 210, 300, 400]) == 1.0  # IoU 0.81
    assert grounding_accuracy("[100, 200, 300, 400]", (100, 200, 300, 300)) == 0.0  # IoU exactly 0.5
    assert grounding_accuracy("[0, 0, 10, 10] then [100, 200, 300, 400]", target) == 0.0  # first box counts
    assert grounding_accuracy("[1200, 0, 5, 5] then [100, 200, 300, 400]", target) == 1.0  # out of range
    assert grounding_accuracy("There is no dog in the image.", target) == 0.0
    assert grounding_accuracy("[100, 200, 300]", target) == 0.0
    assert grounding_accuracy("[100, 200, 300, 400", target) == 0.0
    assert grounding_accuracy("[0.1, 0.2, 0.3, 0.4]", target) == 0.0
    # pixels: the answer's grid box maps to bucket centres of a 640 x 480 image
    assert grounding_accuracy("It is at [100, 200, 300, 400].", (64, 96, 192, 192), 640, 480) == 1.0
    assert grounding_accuracy("It is at [100, 200, 300, 400].", (300, 300, 640, 480), 640, 480) == 0.0
    with pytest.raises(ValueError):
        grounding_accuracy("[1, 2, 3, 4]", target, width=640)


OPTIONS = ["cat", "dog", "bird", "fish"]


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("B", 1),
        ("(B)", 1),
        ("B.", 1),
        ("b", 1),
        ("B) dog", 1),
        ("(C) bird, because it flies", 2),
        ("The answer is B", 1),
        ("Answer: b", 1),
        ("The correct answer is (D) fish.", 3),
        ("the answer is option C", 2),
        ("Option: C", 2),
        ("**C**<|end|> trailing junk", 2),
        ("dog", 1),
        ('"Bird"', 2),
        ("I think it is a dog.", 1),
        ("the answer is a dog", 1),  # "a" is an article here, the option text decides
        ("option 2", 1),
        ("choice #4", 3),
        ("I believe C is right", 2),  # "I" before a word is a pronoun
        ("E", None),  # out of range
        ("cat or dog", None),  # two options named
        ("no idea", None),
        ("", None),
    ],
)
def test_extract_choice(prediction, expected):
    assert extract_choice(prediction, OPTIONS) == expected


def test_extract_choice_nested_options_and_articles():
    assert extract_choice("It is dark red.", ["red", "dark red"]) == 1  # "red" inside "dark red"
    assert extract_choice("red", ["red", "dark red"]) == 0
    assert extract_choice("A cat sits there", ["dog", "cat"]) == 1  # "A" is an article, not option A
    assert extract_choice("x", ["x", "y"]) == 0  # "x" is no letter of 2 options, but it is an option's text
    assert extract_choice("B", []) is None


def test_multiple_choice_accuracy_answer_forms():
    for answer in ("B", "b", 1, "dog", "Dog"):
        assert multiple_choice_accuracy("The answer is (B).", OPTIONS, answer) == 1.0
    assert multiple_choice_accuracy("The answer is (B).", OPTIONS, "C") == 0.0
    assert multiple_choice_accuracy("no idea", OPTIONS, 0) == 0.0
    with pytest.raises(ValueError):
        multiple_choice_accuracy("B", OPTIONS, "Z")
    with pytest.raises(ValueError):
        multiple_choice_accuracy("B", OPTIONS, "horse")


def test_exact_match():
    assert exact_match("Paris.", "paris") == 1.0
    assert exact_match("  New   York ", "new york") == 1.0
    assert exact_match("(yes)", "Yes!") == 1.0
    assert exact_match("Parisian", "paris") == 0.0
    assert exact_match("rome", ["Paris", "Rome"]) == 1.0
    assert exact_match("rome", []) == 0.0


def test_clean_generation():
    assert SPECIAL.end == "<|end|>"
    assert clean_generation(f"Answer: 42{SPECIAL.end}<pad><pad>") == "42"
    assert clean_generation('  "Paris"  ') == "Paris"
    assert clean_generation("Final answer: 'yes'") == "yes"
    assert clean_generation("answer: Answer:  x ") == "x"
    assert clean_generation("\u201cquoted\u201d") == "quoted"
    assert clean_generation("'90s") == "'90s"  # a lone quote is part of the answer
    assert clean_generation(f"{SPECIAL.end}anything") == ""


def test_score_dispatch():
    assert set(METRICS) == {
        "anls",
        "vqa_accuracy",
        "relaxed_accuracy",
        "grounding",
        "multiple_choice",
        "exact_match",
    }
    assert score("anls", f"Paris{SPECIAL.end}", {"answers": ["paris"]}) == 1.0
    assert score("vqa_accuracy", "Answer: two", {"answers": ["2"] * 10}) == 1.0
    assert score("relaxed_accuracy", " 104 ", {"answers": ["50", "100"]}) == 1.0  # cleaned, best answer
    assert score("relaxed_accuracy", " Yes", {"answers": ["yes"]}) == 1.0
    assert score("relaxed_accuracy", " Yes", {"answers": ["yes"]}, clean=False) == 0.0
    assert score("grounding", "[100, 200, 300, 400]", {"answers": [], "box": [100, 200, 300, 400]}) == 1.0
    refs = {"answers": ["B"], "options": OPTIONS}
    assert score("multiple_choice", "The answer is B", refs) == 1.0
    assert score("multiple_choice", "dog", {**refs, "answer": 2}) == 0.0  # `answer` wins over answers[0]
    assert score("exact_match", "Rome.", {"answers": ["rome"]}) == 1.0
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        score("bleu", "x", {"answers": ["x"]})
    with pytest.raises(ValueError, match="'box'"):
        score("grounding", "[1, 2, 3, 4]", {"answers": []})


def test_category_averages_and_mmbase():
    scores = {"docvqa": 0.75, "chartqa": 0.25, "mme": 0.5, "pope": 0.875, "ai2d": 0.625, "refcoco": 0.375}
    scores["in_house"] = 0.125
    categories = {
        "docvqa": "text_rich",
        "chartqa": "text_rich",
        "mme": "general",
        "pope": "general",
        "ai2d": "knowledge",
        "refcoco": "refer_ground",
        "in_house": None,
    }
    averages = category_averages(scores, categories)
    assert averages == {"text_rich": 0.5, "general": 0.6875, "knowledge": 0.625, "refer_ground": 0.375}
    assert mmbase(averages) == (0.6875 + 0.5 + 0.625) / 3
    assert to_percent(mmbase(averages)) == 60.42
    assert mmbase({"general": 0.5, "text_rich": 0.5}) is None
    with pytest.raises(ValueError, match="'mmmu'"):
        category_averages({"mmmu": 0.5}, categories)


def test_to_percent():
    assert to_percent(0.123456) == 12.35
    assert to_percent(1) == 100.0
    assert to_percent(0.6) == 60.0
