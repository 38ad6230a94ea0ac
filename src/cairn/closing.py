"""``async with thing:`` for anything that must be closed: the block closes it on the way out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Closing(ABC):
    """An object holding connections or tasks, released by :meth:`close`; ``async with`` closes it
    however the block ends."""

    @abstractmethod
    async def close(self) -> None:
        """Release what this object holds. Idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
