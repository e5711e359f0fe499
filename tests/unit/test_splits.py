from datetime import UTC, datetime

import pytest

from ml.synthetic.splits import split_of


def test_splits_follow_time() -> None:
    assert split_of(datetime(2025, 1, 1, tzinfo=UTC)) == "train"
    assert split_of(datetime(2025, 8, 31, 23, 59, tzinfo=UTC)) == "train"
    assert split_of(datetime(2025, 9, 1, tzinfo=UTC)) == "dev"
    assert split_of(datetime(2025, 12, 31, tzinfo=UTC)) == "test"
    assert split_of(datetime(2026, 1, 1, 5, tzinfo=UTC)) == "test"
    with pytest.raises(ValueError, match="outside"):
        split_of(datetime(2026, 2, 1, tzinfo=UTC))
