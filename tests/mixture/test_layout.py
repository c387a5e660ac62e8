import numpy as np
import pytest

from mm15.mixture.layout import batch_counts, component_layout, largest_remainder


def test_largest_remainder_is_floor_or_ceil_and_sums() -> None:
    counts = largest_remainder(10, np.array([1.0, 1.0, 1.0]))
    assert counts.tolist() == [4, 3, 3]  # ties go to the earlier weight
    assert largest_remainder(7, np.array([0.0, 2.0, 5.0])).tolist() == [0, 2, 5]


@pytest.mark.parametrize("trial", range(40))
def test_batch_counts_stay_within_one_per_batch_and_cumulatively(trial: int) -> None:
    rng = np.random.default_rng(trial)
    k = int(rng.integers(1, 10))
    shares = rng.dirichlet(np.ones(k) * rng.choice([0.2, 1.0, 5.0]))
    batch_size = int(rng.choice([4, 7, 64, 256]))
    samples = int(rng.integers(1, 5000))
    counts = batch_counts(shares, batch_size, samples)
    assert counts.sum() == samples and (counts >= 0).all()
    full = samples // batch_size
    assert (counts[:full].sum(axis=1) == batch_size).all()
    assert (np.abs(counts[:full] - batch_size * shares) < 1).all()  # floor or ceil in every full batch
    drawn = np.cumsum(counts, axis=0)
    expected = np.cumsum(counts.sum(axis=1))[:, None] * shares
    assert (np.abs(drawn - expected) < 1).all()  # never a whole sample behind or ahead


def test_layout_matches_counts_and_is_shuffled_within_batches() -> None:
    shares = np.array([0.5, 0.25, 0.25])
    layout = component_layout(shares, 64 * 3, 64, stratified=True, rng=np.random.default_rng(0))
    for batch in layout.reshape(3, 64):
        assert np.bincount(batch, minlength=3).tolist() == [32, 16, 16]
        assert batch.tolist() != sorted(batch.tolist())


def test_unstratified_layout_has_exact_totals_only() -> None:
    shares = np.array([0.5, 0.5])
    layout = component_layout(shares, 1000, 10, stratified=False, rng=np.random.default_rng(0))
    assert np.bincount(layout).tolist() == [500, 500]
    assert {int(b.sum()) for b in layout.reshape(100, 10)} != {5}
