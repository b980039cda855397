"""How a benchmark's questions are split, so that nothing is scored on what it was fitted on.

:func:`in_split` puts a question in ``train`` or ``test`` by a sha1 of its id (about half each by
default); :func:`fold_of` gives it a cross-fitting fold from other bits of the same hash. A
learned component is fitted on ``train`` (or on the other folds) and reported on ``test``.
"""

from __future__ import annotations

import hashlib

__all__ = ["fold_of", "in_split"]


def in_split(query_id: str, split: str, train_share: float = 0.5) -> bool:
    """Whether a question belongs to ``split`` (train/test by a sha1 of its id, or all)."""
    if split == "all":
        return True
    bucket = int(hashlib.sha1(query_id.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    is_train = bucket < train_share
    if split == "train":
        return is_train
    if split == "test":
        return not is_train
    raise ValueError(f"split must be train, test or all, got {split!r}")


def fold_of(query_id: str, folds: int) -> int:
    """A question's cross-fitting fold in ``0 … folds-1`` (from other bits of the sha1 than
    :func:`in_split`, so every fold holds train and test questions alike)."""
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    return int(hashlib.sha1(query_id.encode("utf-8")).hexdigest()[8:16], 16) % folds
