"""Tokenizers: the special tokens MM1.5 needs, a local byte-level tokenizer, a locally trained BPE.

Nothing is downloaded: the tiny preset's tokenizer is built here (one token per UTF-8 byte) or
trained on local text with the `tokenizers` library; the 1B/3B presets load the LM's own
tokenizer from a local folder and :func:`add_mm15_tokens` adds the tokens below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast


@dataclass(frozen=True)
class SpecialTokens:
    """The token strings the processor and the chat template use."""

    pad: str = "<pad>"
    bos: str = "<s>"
    end: str = "<|end|>"  # end of a turn; also the tokenizer's eos, so generation stops there
    image: str = "<image>"  # one placeholder per image feature
    tile: str = "<tile>"  # starts an "index" tile indicator: <tile>k,i,j
    tile_sep: str = "<tile_sep>"  # between tiles of a row ("seps" indicators)
    row_sep: str = "<row_sep>"  # after each row of tiles ("seps" indicators)
    system: str = "<|system|>"
    user: str = "<|user|>"
    assistant: str = "<|assistant|>"

    def role(self, role: str) -> str:
        return {"system": self.system, "user": self.user, "assistant": self.assistant}[role]


SPECIAL = SpecialTokens()


def _bytes_to_unicode() -> list[str]:
    """GPT-2's printable stand-in character for each byte value 0..255, in byte order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def _wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=SPECIAL.bos,
        eos_token=SPECIAL.end,
        pad_token=SPECIAL.pad,
        extra_special_tokens=[
            t for t in astuple(SPECIAL) if t not in (SPECIAL.bos, SPECIAL.end, SPECIAL.pad)
        ],
    )


def _byte_level(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def build_byte_tokenizer() -> PreTrainedTokenizerFast:
    """One token per UTF-8 byte after the special tokens (ids 0..9), so id(byte b) = 10 + b."""
    specials = list(astuple(SPECIAL))
    vocab = {token: i for i, token in enumerate([*specials, *_bytes_to_unicode()])}
    tokenizer = _byte_level(Tokenizer(models.BPE(vocab=vocab, merges=[])))
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return _wrap(tokenizer)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on local text (e.g. the catalog's conversations)."""
    specials = list(astuple(SPECIAL))
    tokenizer = _byte_level(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return _wrap(tokenizer)


def add_mm15_tokens(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Add MM1.5's special tokens to a pretrained LM's tokenizer (in place); the end token becomes eos.

    The LM's embeddings must then hold `len(tokenizer)` rows (see `resize_token_embeddings`).
    """
    missing = [t for t in astuple(SPECIAL) if t not in tokenizer.get_vocab()]
    tokenizer.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
    tokenizer.eos_token = SPECIAL.end
    if tokenizer.pad_token is None:
        tokenizer.pad_token = SPECIAL.pad
    return tokenizer
