"""Progress reporting for the indexing pipeline: rich bars with ETA, or nothing.

The pipeline only calls ``stage`` / ``advance`` / ``set_total`` / ``finish``; the bars are a detail of
this module, so library callers can pass ``progress=False`` or their own reporter.
"""

from __future__ import annotations

import sys

STAGES = {
    "reading": "reading corpus",
    "chunking": "chunking",
    "embedding": "embedding",
    "compressing": "compressing",
}


class ProgressReporter:
    """Does nothing; subclass it to show progress somewhere."""

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def stage(self, name: str, total: int | None = None) -> None:
        """Start stage ``name`` with ``total`` steps (None: unknown yet)."""

    def advance(self, name: str, steps: int = 1) -> None:
        pass

    def set_total(self, name: str, total: int) -> None:
        """Correct a stage's total (the number of chunks is only estimated until chunking ends)."""

    def finish(self, name: str) -> None:
        """Mark a stage complete (its total becomes what was done)."""

    def log(self, message: str) -> None:
        pass


class RichProgress(ProgressReporter):
    """One rich bar per stage on stderr, with count, elapsed time and ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=sys.stderr)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def stage(self, name: str, total: int | None = None) -> None:
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(STAGES.get(name, name), total=total)

    def advance(self, name: str, steps: int = 1) -> None:
        self.stage(name)
        self._progress.advance(self._tasks[name], steps)

    def set_total(self, name: str, total: int) -> None:
        self.stage(name)
        self._progress.update(self._tasks[name], total=total)

    def finish(self, name: str) -> None:
        self.stage(name)
        task = self._progress.tasks[self._tasks[name]]
        self._progress.update(self._tasks[name], total=task.completed)

    def log(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)
