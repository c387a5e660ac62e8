import numpy as np
import pytest

from mm15.mixture.draw import draw_rows, seeded_rng, source_weights


def test_draws_are_epochs_of_permutations() -> None:
    rows, epochs = draw_rows(seeded_rng(0, "a"), 5, 12)
    assert epochs.tolist() == [0] * 5 + [1] * 5 + [2] * 2
    assert sorted(rows[:5].tolist()) == sorted(rows[5:10].tolist()) == [0, 1, 2, 3, 4]
    assert rows[:5].tolist() != rows[5:10].tolist()  # each epoch a fresh permutation (fixed seed)


def test_fewer_draws_are_a_prefix_of_more() -> None:
    few, _ = draw_rows(seeded_rng(3, "ocr", "pdfa"), 50, 20)
    many, _ = draw_rows(seeded_rng(3, "ocr", "pdfa"), 50, 130)
    assert many[:20].tolist() == few.tolist()
    assert draw_rows(seeded_rng(4, "ocr", "pdfa"), 50, 20)[0].tolist() != few.tolist()


def test_streams_differ_by_label_and_repeat_by_seed() -> None:
    assert seeded_rng(1, "x").integers(1 << 60) == seeded_rng(1, "x").integers(1 << 60)
    assert seeded_rng(1, "x").integers(1 << 60) != seeded_rng(1, "y").integers(1 << 60)


def test_source_weights() -> None:
    sizes = np.array([100.0, 25.0])
    assert source_weights(sizes, "proportional").tolist() == [100.0, 25.0]
    assert source_weights(sizes, "uniform").tolist() == [1.0, 1.0]
    assert source_weights(sizes, "temperature", 2.0).tolist() == [10.0, 5.0]
    with pytest.raises(ValueError, match="unknown within_category"):
        source_weights(sizes, "random")
