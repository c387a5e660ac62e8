"""Answer parsing: cleaning generations, the official VQA answer normalisation, multiple-choice extraction.

The VQA normalisation is the official VQA v2 evaluation script's (`vqaEval.py`, GT-Vision-Lab), reproduced
rule for rule, quirks included (see :func:`normalize_vqa_answer`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mm15.model.tokenizer import SPECIAL

# ---------------------------------------------------------------------------------------------------------
# Cleaning generations
# ---------------------------------------------------------------------------------------------------------

_ANSWER_PREFIX = re.compile(r"^(?:final\s+)?answer\s*:\s*", re.IGNORECASE)
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019"}


def clean_generation(text: str) -> str:
    """A generated answer ready for scoring.

    Drops the chat end token and everything after it, then repeatedly strips surrounding whitespace, leading
    `Answer:` / `Final answer:` prefixes (case-insensitive) and one pair of matching surrounding quotes
    (`"x"`, `'x'`, backticks, curly quotes); a lone quote (`'90s`) is kept.
    """
    text = text.split(SPECIAL.end, 1)[0]
    while True:
        cleaned = _ANSWER_PREFIX.sub("", text.strip()).strip()
        if len(cleaned) >= 2 and _QUOTE_PAIRS.get(cleaned[0]) == cleaned[-1]:
            cleaned = cleaned[1:-1].strip()
        if cleaned == text:
            return cleaned
        text = cleaned


# ---------------------------------------------------------------------------------------------------------
# The official VQA answer normalisation (vqaEval.py)
# ---------------------------------------------------------------------------------------------------------

# The script's `contractions` dict, verbatim (120 entries, "key=value" pairs). Its quirks are kept: keys such
# as "Im", "Ive", "Id've" are capitalised and so never match the lower-cased words they are looked up with,
# and "somebody'd" maps to "somebodyd".
_CONTRACTION_PAIRS = """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've
hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's
howd=how'd howll=how'll hows=how's Id've=I'd've I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd
itd've=it'd've it'dve=it'd've itll=it'll let's=let's maam=ma'am mightnt=mightn't
mightnt've=mightn't've mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've
neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at
'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's shouldve=should've
shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's
someoned=someone'd someoned've=someone'd've someone'dve=someone'd've someonell=someone'll
someones=someone's somethingd=something'd somethingd've=something'd've something'dve=something'd've
somethingll=something'll thats=that's thered=there'd thered've=there'd've there'dve=there'd've
therere=there're theres=there's theyd=they'd theyd've=they'd've they'dve=they'd've theyll=they'll
theyre=they're theyve=they've twas='twas wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've
werent=weren't whatll=what'll whatre=what're whats=what's whatve=what've whens=when's whered=where'd
wheres=where's whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's
whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't
wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll
yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've
you'dve=you'd've youll=you'll youre=you're youve=you've
"""
VQA_CONTRACTIONS: dict[str, str] = dict(pair.split("=", 1) for pair in _CONTRACTION_PAIRS.split())
VQA_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
VQA_ARTICLES = ("a", "an", "the")
# the script's `punct` list, in its order
VQA_PUNCT = tuple(';/[]"{}()=+\\_-><@`,?!')
# sic: "(?!<=" is a look-ahead, so this deletes any "." not followed by a digit
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def vqa_process_punctuation(text: str) -> str:
    """`processPunctuation`: each mark is deleted when it touches a space (or the text has a digit,digit comma
    anywhere), else replaced by a space; the tests look at the *input* text, as in the script. Then periods
    not followed by a digit are deleted; the script passes `re.UNICODE` (32) as `sub`'s positional `count`,
    so at most 32 periods go, kept here."""
    out = text
    for p in VQA_PUNCT:
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=int(re.UNICODE))


def vqa_process_digit_article(text: str) -> str:
    """`processDigitArticle`: lower-case, number words 0-10 -> digits, articles dropped, contractions."""
    words = [VQA_NUMBERS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in VQA_ARTICLES]
    return " ".join(VQA_CONTRACTIONS.get(w, w) for w in words)


def normalize_vqa_answer(text: str) -> str:
    """Tabs and newlines -> spaces, strip, then `processPunctuation` and `processDigitArticle`."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return vqa_process_digit_article(vqa_process_punctuation(text))


# ---------------------------------------------------------------------------------------------------------
# Multiple choice
# ---------------------------------------------------------------------------------------------------------

_BARE_LETTER = re.compile(r"^\(?\s*([A-Za-z])\s*\)?\s*[.:)]?$")  # "B", "(B)", "B.", "b)", "B:"
_LEADING_LETTER = re.compile(r"^(?:\(([A-Za-z])\)|([A-Z])[.):]|([a-z])\))\s*\S")  # "(B) x", "B. x", "b) x"
_KEYWORD_LETTER = re.compile(
    r"\b(?:answer|option|choice)(?:\s+is)?(?:\s*[:\-]\s*|\s+|(?=\())(?:(?:option|choice|letter)\s+)?"
    r"\(?([A-Za-z])\)?(?![\w'])(\s+\w)?",
    re.IGNORECASE,
)  # "The answer is B", "Answer: b", "answer is option (C)", "Option D"
_OPTION_NUMBER = re.compile(r"\b(?:option|choice)\s*(?:#|no\.?|number)?\s*(\d+)\b", re.IGNORECASE)
_LONE_CAPITAL = re.compile(r"(?<![\w'])([A-Z])(?![\w'])(\s+[a-z])?")


def _letter_index(letter: str, n: int) -> int | None:
    index = ord(letter.upper()) - ord("A")
    return index if 0 <= index < n else None


def _norm_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _has_words(text: str, words: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text) is not None


def _option_text_match(text: str, options: Sequence[str]) -> tuple[int | None, int | None]:
    """(the option equal to the text, the one option contained in it), each None when not unique."""
    target = _norm_text(text)
    normed = [_norm_text(o) for o in options]
    equal = [i for i, o in enumerate(normed) if o and o == target]
    contained = [i for i, o in enumerate(normed) if o and _has_words(target, o)]
    # an option inside a longer contained option ("red" in "dark red") is not a competing match
    contained = [
        i
        for i in contained
        if not any(normed[i] != normed[j] and _has_words(normed[j], normed[i]) for j in contained)
    ]
    return (equal[0] if len(equal) == 1 else None, contained[0] if len(contained) == 1 else None)


def extract_choice(prediction: str, options: Sequence[str]) -> int | None:
    """The 0-based index of the option a messy generation picks, or None.

    Tried in order, the first rule that gives an in-range option wins:
    1. the whole answer is a letter: "B", "(b)", "B.", "B)";
    2. the whole answer is one option's text (case, punctuation and spacing ignored);
    3. it starts with a letter marker: "B) text", "B. text", "(B) text", "b) text";
    4. a letter after "answer"/"option"/"choice": "The answer is B", "Answer: b", "answer is option (C)"
       (a lower-case letter followed by a word, as in "the answer is a dog", is an article, not a choice);
    5. "option 2" / "choice #2": 1-based numbers;
    6. exactly one option's text appears in the answer (an option inside a longer matching one is ignored);
    7. exactly one distinct capital letter stands alone in range ("A"/"I" before a lower-case word are
       treated as an article/pronoun).
    """
    text = clean_generation(prediction).replace("*", "").strip()
    n = len(options)
    if not text or n == 0:
        return None
    if (m := _BARE_LETTER.match(text)) is not None and (index := _letter_index(m.group(1), n)) is not None:
        return index
    equal, contained = _option_text_match(text, options)
    if equal is not None:
        return equal
    if (m := _LEADING_LETTER.match(text)) is not None:
        index = _letter_index(next(g for g in m.groups() if g), n)
        if index is not None:
            return index
    for m in _KEYWORD_LETTER.finditer(text):
        letter, next_word = m.group(1), m.group(2)
        if letter.islower() and next_word:
            continue
        if (index := _letter_index(letter, n)) is not None:
            return index
    for m in _OPTION_NUMBER.finditer(text):
        if 1 <= int(m.group(1)) <= n:
            return int(m.group(1)) - 1
    if contained is not None:
        return contained
    lone = {
        index
        for m in _LONE_CAPITAL.finditer(text)
        if not (m.group(1) in "AI" and m.group(2)) and (index := _letter_index(m.group(1), n)) is not None
    }
    return lone.pop() if len(lone) == 1 else None
