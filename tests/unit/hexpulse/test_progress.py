"""Which closing counts (hexpulse/store/progress.py): fences, gaps, legacy rows and resuming."""

from __future__ import annotations

from hexpulse.store.progress import CLAIM, Coverage, ProgressRow

W = 60_000


def closing(
    p: int, a: int, b: int, closing_id: int, epoch: int, gen: int = 0, by: str = "watermark"
) -> ProgressRow:
    return ProgressRow(p, a * W, b * W, b * W - 30_000, closing_id, epoch, gen, by)


def counted(cov: Coverage, partition: int, window_ms: int) -> int | None:
    c = cov.counted(partition, window_ms)
    return None if c is None else c.closing


def claim(p: int, at: int, epoch: int, gen: int = 0) -> ProgressRow:
    return ProgressRow(p, at * W, at * W, at * W - 30_000, 1000 + epoch, epoch, gen, CLAIM)


def test_one_owner_counts_each_window_once() -> None:
    cov = Coverage([claim(0, 0, 1), closing(0, 0, 3, 11, 1), closing(0, 3, 4, 12, 1, by="idle")])
    assert [counted(cov, 0, w * W) for w in range(4)] == [11, 11, 11, 12]
    assert cov.counted(0, 4 * W) is None
    assert cov.horizon(0) == 4 * W and cov.horizon(1) is None
    resume = cov.resume(0)
    assert resume is not None and resume.closing == 12 and cov.latest_epoch(0) == 1


def test_a_later_claim_fences_the_old_owner_from_its_resume_horizon_on() -> None:
    rows = [
        claim(0, 0, 1, gen=7),
        closing(0, 0, 2, 11, 1, gen=7),
        claim(0, 2, 2, gen=8),  # the new owner resumes at window 2
        closing(0, 2, 5, 13, 1, gen=7),  # the zombie goes on: fenced entirely
    ]
    cov = Coverage(rows)
    assert counted(cov, 0, 1 * W) == 11
    assert cov.counted(0, 2 * W) is None and cov.horizon(0) == 2 * W  # incomplete until B closes
    cov = Coverage([*rows, closing(0, 2, 3, 21, 2, gen=8)])
    assert counted(cov, 0, 2 * W) == 21 and cov.counted(0, 3 * W) is None
    resume = cov.resume(0)
    assert resume is not None and resume.to_ms == 3 * W and cov.latest_epoch(0) == 2


def test_a_zombie_closing_that_straddles_the_claim_counts_below_it_only() -> None:
    cov = Coverage([claim(0, 0, 1), claim(0, 2, 2), closing(0, 0, 4, 11, 1)])
    assert counted(cov, 0, 1 * W) == 11
    assert cov.counted(0, 2 * W) is None
    resume = cov.resume(0)  # not the cut closing: its watermark is past where it counts
    assert resume is not None and resume.is_claim and resume.to_ms == 2 * W


def test_equal_epochs_are_ordered_by_the_kafka_generation() -> None:
    """Two claims that raced to the same epoch: the later group generation wins."""
    cov = Coverage(
        [claim(0, 0, 1, gen=3), claim(0, 0, 1, gen=4), closing(0, 0, 1, 11, 1, 3), closing(0, 0, 1, 12, 1, 4)]
    )
    assert counted(cov, 0, 0) == 12


def test_legacy_rows_count_as_before() -> None:
    """Rows written before migration 0008: no claims, closing 0, from_horizon 0 (1970)."""
    cov = Coverage([closing(2, 0, 5, 0, 0), closing(2, 0, 6, 0, 0)])
    assert counted(cov, 2, 5 * W) == 0 and cov.horizon(2) == 6 * W
    cov = Coverage([closing(2, 0, 6, 0, 0), claim(2, 6, 1), closing(2, 6, 7, 31, 1)])
    assert counted(cov, 2, 5 * W) == 0 and counted(cov, 2, 6 * W) == 31
