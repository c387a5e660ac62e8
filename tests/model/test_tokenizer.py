from dataclasses import astuple

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from mm15.model.tokenizer import SPECIAL, add_mm15_tokens, build_byte_tokenizer, train_bpe_tokenizer

TEXT = "Héllo, wörld! 数字 [12, 340, 560, 999] \n\ttabs & emoji 🙂"


def test_byte_tokenizer_is_one_token_per_utf8_byte():
    tokenizer = build_byte_tokenizer()
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert ids == [10 + b for b in TEXT.encode()]
    assert tokenizer.decode(ids) == TEXT
    assert len(tokenizer) == 256 + len(astuple(SPECIAL))


def test_special_tokens_are_single_ids_and_eos_ends_a_turn():
    tokenizer = build_byte_tokenizer()
    for token in astuple(SPECIAL):
        assert tokenizer(token, add_special_tokens=False)["input_ids"] == [
            tokenizer.convert_tokens_to_ids(token)
        ]
    assert tokenizer.eos_token == SPECIAL.end
    assert tokenizer.pad_token_id == 0 and tokenizer.bos_token == SPECIAL.bos
    ids = tokenizer(f"a{SPECIAL.image}b", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "ab"


def test_byte_tokenizer_saves_and_loads(tmp_path):
    tokenizer = build_byte_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded(TEXT + SPECIAL.end)["input_ids"] == tokenizer(TEXT + SPECIAL.end)["input_ids"]
    assert loaded.eos_token == SPECIAL.end and loaded.pad_token == SPECIAL.pad


def test_trained_bpe_keeps_special_tokens_and_round_trips():
    corpus = ["what colour is the square?", "the square is red", "count the circles: 3"] * 30
    tokenizer = train_bpe_tokenizer(corpus, vocab_size=320)
    ids = tokenizer("the square is red" + SPECIAL.image, add_special_tokens=False)["input_ids"]
    assert len(ids) < len("the square is red") + 1  # merges learned
    assert ids[-1] == tokenizer.convert_tokens_to_ids(SPECIAL.image)
    assert tokenizer.decode(ids) == "the square is red" + SPECIAL.image
    assert tokenizer.decode(tokenizer(TEXT)["input_ids"]) == TEXT  # unseen text still encodes (bytes)


def test_add_mm15_tokens_to_a_pretrained_tokenizer():
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(
        ["some words here"] * 5, trainers.BpeTrainer(special_tokens=["<unk>", "<eos>"])
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", unk_token="<unk>")
    before = len(tokenizer)
    add_mm15_tokens(tokenizer)
    assert len(tokenizer) == before + len(astuple(SPECIAL))
    for token in astuple(SPECIAL):
        assert tokenizer(token, add_special_tokens=False)["input_ids"] == [
            tokenizer.convert_tokens_to_ids(token)
        ]
    assert tokenizer.eos_token == SPECIAL.end and tokenizer.pad_token == SPECIAL.pad
    add_mm15_tokens(tokenizer)  # idempotent
    assert len(tokenizer) == before + len(astuple(SPECIAL))
