import pytest

from mm15.catalog import commit as commit_module
from mm15.catalog import open_catalog
from mm15.catalog.schema import ACCOUNTING_COLUMNS
from mm15.data.record import Reason
from tests.images import encode, picture
from tests.lake import sample


def accounting(result):
    return {(a["source"], a["split"]): a for a in result.accounting}


def test_commit_keeps_valid_rows_and_accounts_for_every_row(lake):
    bad = sample("a", "bad", images=[b"garbage"])
    spec = lake.stage("a", [sample("a", "k1", (1,)), sample("a", "k2", (2,)), bad])
    result = lake.commit([spec])
    assert result.committed
    row = accounting(result)[("a", "train")]
    assert (row["read"], row["kept"], row["quarantined"], row["duplicates"], row["contaminated"]) == (
        3,
        2,
        1,
        0,
        0,
    )
    assert lake.query("SELECT key FROM samples ORDER BY key") == [("k1",), ("k2",)]
    assert lake.query("SELECT key, reason FROM rejects") == [("bad", Reason.BAD_IMAGE)]
    # images are stored once, keyed by content hash, apart from the light sample rows
    assert lake.query("SELECT count(*) FROM images") == [(2,)]
    assert lake.query("SELECT read, kept, quarantined FROM ingests") == [(3, 2, 1)]


def test_exact_duplicates_within_and_across_sources(lake):
    a = lake.stage("a", [sample("a", "k1", (1,)), sample("a", "k2", (1,), text="what is SHOWN?")])
    b = lake.stage("b", [sample("b", "k1", (1,)), sample("b", "k2", (3,))])
    result = lake.commit([a, b])
    assert lake.query("SELECT source, key FROM samples ORDER BY 1, 2") == [("a", "k1"), ("b", "k2")]
    rejects = lake.query("SELECT source, key, reason, detail FROM rejects ORDER BY 1, 2")
    assert [(s, k, r) for s, k, r, _ in rejects] == [("a", "k2", "duplicate"), ("b", "k1", "duplicate")]
    assert all("a:k1" in detail for *_, detail in rejects)
    acc = accounting(result)
    assert acc[("a", "train")]["duplicates"] == 1 and acc[("b", "train")]["duplicates"] == 1
    for row in result.accounting:
        assert row["read"] == row["kept"] + row["quarantined"] + row["duplicates"] + row["contaminated"]


def test_near_duplicate_image_is_detected_across_encodings(lake):
    img = picture(7, (160, 120))
    first = lake.stage("a", [sample("a", "png", images=[encode(img)])])
    second = lake.stage("b", [sample("b", "jpeg", images=[encode(img, "JPEG", quality=80)])])
    lake.commit([first])
    lake.commit([second])
    assert lake.query("SELECT source FROM samples") == [("a",)]
    ((reason, detail),) = lake.query("SELECT reason, detail FROM rejects")
    assert reason == "duplicate" and "near-identical" in detail


def test_same_image_with_different_text_is_not_a_duplicate(lake):
    spec = lake.stage(
        "a", [sample("a", "q1", (1,), text="What colour?"), sample("a", "q2", (1,), text="How many?")]
    )
    lake.commit([spec])
    assert lake.query("SELECT count(*) FROM samples") == [(2,)]


def test_train_sample_sharing_an_eval_image_is_contaminated(lake):
    train = lake.stage("t", [sample("t", "k1", (4,), text="Describe."), sample("t", "k2", (5,))])
    evals = lake.stage("e", [sample("e", "k1", (4,), text="Count.", split="eval")], split="eval")
    result = lake.commit([train, evals])
    assert lake.query("SELECT source, key, split FROM samples ORDER BY 1") == [
        ("e", "k1", "eval"),
        ("t", "k2", "train"),
    ]
    assert lake.query("SELECT source, key, reason FROM rejects") == [("t", "k1", "contaminated")]
    assert accounting(result)[("t", "train")]["contaminated"] == 1


@pytest.mark.slow  # several commits: over a second
def test_eval_set_ingested_later_evicts_contaminated_train_rows(lake):
    train = lake.stage("t", [sample("t", "k1", (4,)), sample("t", "k2", (5,))])
    before = lake.commit([train]).snapshot
    evals = lake.stage(
        "e", [sample("e", "k1", images=[encode(picture(4), "JPEG", quality=85)], split="eval")], split="eval"
    )
    result = lake.commit([evals])
    assert lake.query("SELECT source, key FROM samples ORDER BY 1") == [("e", "k1"), ("t", "k2")]
    ((reason, detail),) = lake.query("SELECT reason, detail FROM rejects")
    assert reason == "contaminated" and detail.startswith("evicted")
    assert accounting(result)[("t", "train")]["evicted"] == 1
    # the older snapshot still has the row: snapshots are immutable
    assert lake.query("SELECT count(*) FROM samples WHERE source = 't'", snapshot=before) == [(2,)]


def test_recommitting_the_same_shards_adds_nothing(lake):
    spec = lake.stage("a", [sample("a", "k1")])
    first = lake.commit([spec])
    again = lake.commit([spec])
    assert not again.committed and again.snapshot == first.snapshot
    assert lake.query("SELECT count(*) FROM samples") == [(1,)]


@pytest.mark.slow  # several commits: over a second
def test_a_failed_commit_leaves_the_catalog_unchanged(lake, monkeypatch):
    ok = lake.stage("a", [sample("a", "k1")])
    snapshot = lake.commit([ok]).snapshot
    spec = lake.stage("b", [sample("b", "k1", (9,))])

    def broken(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(commit_module, "_accounting", broken)
    with pytest.raises(RuntimeError):
        lake.commit([spec])
    monkeypatch.undo()
    with open_catalog(lake.root) as catalog:
        assert catalog.snapshot_id() == snapshot
    assert lake.query("SELECT source FROM samples") == [("a",)]
    result = lake.commit([spec])
    assert result.committed and lake.query("SELECT count(*) FROM samples") == [(2,)]


@pytest.mark.slow  # several commits: over a second
def test_snapshots_are_numbered_and_carry_their_accounting(lake):
    lake.commit([lake.stage("a", [sample("a", "k1")])], message="first")
    lake.commit([lake.stage("b", [sample("b", "k1", (2,))])], message="second")
    with open_catalog(lake.root) as catalog:
        snaps = catalog.snapshots()
    tables = "created the catalog tables (samples, images, rejects, ingests, shards)"
    assert [s["message"] for s in snaps] == [tables, "first", "second"]
    assert [s["snapshot"] for s in snaps] == [1, 2, 3]  # 0 is the empty catalog, 1 its tables
    assert snaps[2]["info"]["read"] == 1 and snaps[2]["info"]["kept"] == 1


# The named steps of the decision, one by one.


def candidate(source="a", key="k", split="train", images=("i1",), text="t", in_catalog=False, ident=0):
    from mm15.catalog.dedup_decisions import Candidate

    return Candidate(in_catalog, ident, source, key, split, list(images), text)


def test_survival_order_puts_eval_first_then_catalog_rows_then_source_and_key():
    from mm15.catalog.dedup_decisions import survival_order

    new_train = candidate("a", "k1")
    old_train = candidate("z", "k9", in_catalog=True)
    new_eval = candidate("b", "k1", split="eval")
    old_eval = candidate("c", "k1", split="eval", in_catalog=True)
    later_source = candidate("b", "k0")
    ordered = sorted([later_source, new_train, new_eval, old_train, old_eval], key=survival_order)
    assert ordered == [old_eval, new_eval, old_train, new_train, later_source]


def test_judge_finds_exact_and_near_copies_of_kept_samples():
    from mm15.catalog.dedup_decisions import Judge

    judge = Judge({"i1": {"j1"}, "j1": {"i1"}}, set())
    kept = candidate("a", "k1", images=("i1", "i2"))
    judge.accept(kept)
    assert judge.copy_of(candidate("b", "k1", images=("i1", "i2"))) == (
        Reason.DUPLICATE,
        "same content as a:k1",
    )
    assert judge.copy_of(candidate("b", "k2", images=("j1", "i2"))) == (
        Reason.DUPLICATE,
        "same content as a:k1 (near-identical images)",
    )
    assert judge.copy_of(candidate("b", "k3", images=("i2", "i1"))) is None  # image order matters
    assert judge.copy_of(candidate("b", "k4", images=("i1", "i2"), text="other")) is None
    assert judge.copy_of(candidate("b", "k5", images=("i1",))) is None


def test_judge_calls_a_train_copy_of_a_kept_eval_sample_contamination():
    from mm15.catalog.dedup_decisions import Judge

    judge = Judge({}, set())
    judge.accept(candidate("e", "k1", split="eval"))
    assert judge.copy_of(candidate("t", "k1")) == (Reason.CONTAMINATED, "same content as e:k1")


def test_judge_decontaminates_train_samples_sharing_an_eval_image():
    from mm15.catalog.dedup_decisions import CATALOG_EVAL, Judge

    judge = Judge({"i9": {"n9"}, "n9": {"i9"}}, {"c1"})
    judge.accept(candidate("e", "k1", split="eval", images=("i9",), text="eval question"))
    assert judge.contamination(candidate("t", "k1", images=("x", "n9"))) == (
        Reason.CONTAMINATED,
        "shares an image with eval sample e:k1",
    )
    assert judge.contamination(candidate("t", "k2", images=("c1",))) == (
        Reason.CONTAMINATED,
        f"shares an image with {CATALOG_EVAL}",
    )
    assert judge.contamination(candidate("e", "k2", split="eval", images=("i9",))) is None
    assert judge.contamination(candidate("t", "k3", images=("x",))) is None


def test_accounting_columns_are_the_ingests_counts():
    from mm15.catalog import schema

    assert schema.INGESTS.names == ["commit_id", "source", "split", "shards", *schema.ACCOUNTING_COLUMNS]


@pytest.mark.slow  # several commits: over a second
def test_evicted_rows_are_contaminated_rejects_with_their_own_source(lake):
    train = lake.stage("t", [sample("t", "k1", (4,)), sample("t", "k2", (4,), text="Another question.")])
    lake.commit([train])
    eval_image = encode(picture(4), "JPEG", quality=85)
    evals = lake.stage("e", [sample("e", "k1", images=[eval_image], split="eval")], split="eval")
    result = lake.commit([evals])
    assert lake.query("SELECT source, key, split, reason, detail FROM rejects ORDER BY key") == [
        ("t", "k1", "train", "contaminated", "evicted: same content as e:k1 (near-identical images)"),
        ("t", "k2", "train", "contaminated", "evicted: shares an image with eval sample e:k1"),
    ]
    assert lake.query("SELECT source, key FROM samples") == [("e", "k1")]
    acc = accounting(result)
    assert acc[("t", "train")]["evicted"] == 2 and acc[("t", "train")]["read"] == 0
    assert acc[("e", "eval")]["kept"] == 1 and acc[("e", "eval")]["evicted"] == 0


@pytest.mark.slow  # several commits: over a second
def test_an_eval_sample_identical_to_an_evicted_train_row_stays(lake):
    # The eval row has the same sample_id (content hash) as the train row it evicts: eviction (by
    # sample_id) must happen before the eval row is inserted, or it would be deleted too.
    lake.commit([lake.stage("t", [sample("t", "k1", (4,))])])
    result = lake.commit([lake.stage("e", [sample("e", "k1", (4,), split="eval")], split="eval")])
    assert lake.query("SELECT source, key FROM rejects") == [("t", "k1")]
    assert lake.query("SELECT source, key FROM samples") == [("e", "k1")]
    assert accounting(result)[("e", "eval")]["evicted"] == 0


@pytest.mark.slow  # several commits: over a second
def test_samples_without_images_are_deduplicated_and_decontaminated_in_bulk(lake):
    def text(source, key, words, split="train"):
        return sample(source, key, (), text=words, split=split)

    first = lake.commit(
        [
            lake.stage(
                "t",
                [
                    text("t", "a", "Name a colour."),
                    text("t", "b", "name  a COLOUR."),
                    text("t", "c", "Other?"),
                ],
            ),
            lake.stage("e", [text("e", "x", "Other?", split="eval")], split="eval"),
        ]
    )
    assert lake.query("SELECT source, key FROM samples ORDER BY 1, 2") == [("e", "x"), ("t", "a")]
    assert lake.query("SELECT key, reason, detail FROM rejects ORDER BY key") == [
        ("b", "duplicate", "same content as t:a"),
        ("c", "contaminated", "same content as e:x"),
    ]
    counts = accounting(first)[("t", "train")]
    assert {k: counts[k] for k in ("shards", *ACCOUNTING_COLUMNS)} == {
        "shards": 1,
        "read": 3,
        "kept": 1,
        "quarantined": 0,
        "duplicates": 1,
        "contaminated": 1,
        "evicted": 0,
    }
    # an eval set ingested later evicts the catalog's train copy and keeps its own row
    later = lake.commit([lake.stage("f", [text("f", "y", "NAME A COLOUR.", split="eval")], split="eval")])
    assert lake.query("SELECT source, key FROM samples ORDER BY 1, 2") == [("e", "x"), ("f", "y")]
    assert lake.query("SELECT source, key, detail FROM rejects WHERE key = 'a'") == [
        ("t", "a", "evicted: same content as f:y")
    ]
    assert accounting(later)[("t", "train")]["evicted"] == 1
    assert accounting(later)[("f", "eval")]["kept"] == 1
