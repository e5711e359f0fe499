"""A 1-d array with spare capacity, so that appending b values costs O(b) amortised."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

GROWTH = 1.5  # capacity grows by half: spare room stays under a third of what is held


class Growing:
    """`values` is a view of the first `len(self)` entries; appending may move them to a new array.

    The view of a previous length stays valid for readers that took it, but is not updated.
    """

    def __init__(self, dtype: npt.DTypeLike, values: npt.ArrayLike | None = None) -> None:
        initial = np.zeros(0, dtype=dtype) if values is None else np.asarray(values, dtype=dtype)
        self._data: npt.NDArray[Any] = initial.copy()
        self._size = len(initial)

    def __len__(self) -> int:
        return self._size

    @property
    def values(self) -> npt.NDArray[Any]:
        return self._data[: self._size]

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def nbytes(self) -> int:
        """The bytes allocated, spare capacity included."""
        return int(self._data.nbytes)

    def extend(self, values: npt.ArrayLike) -> None:
        new = np.asarray(values, dtype=self._data.dtype).reshape(-1)
        end = self._size + len(new)
        if end > len(self._data):
            capacity = max(end, int(len(self._data) * GROWTH) + 16)
            grown = np.zeros(capacity, dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : end] = new
        self._size = end
