"""What an ``index`` run did: the ``IndexReport`` that ``index_corpus`` returns, and how the CLI shows it.

``print_report`` draws the summary table and the skipped files; ``unreadable_message`` is the one line
the CLI ends with (exit status 1) when files or folders exist but could not be read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from indexing.readers import Skipped
from ragcompress.store import StoreStats

MAX_SKIPPED_SHOWN = 10


@dataclass
class IndexReport:
    index_dir: Path
    corpus: Path
    engine: str
    added: int  # documents new to the index
    changed: int  # documents whose content hash changed (re-chunked and replaced)
    removed: int  # documents no longer in the corpus
    unchanged: int
    chunks: int  # chunks embedded and compressed by this run
    tokens: int  # text tokens in those chunks
    skipped: list[Skipped]
    seconds: float  # the whole run, model loading included
    chunks_per_second: float  # chunks / seconds
    commits: int
    stats: StoreStats  # the whole index after this run
    timings: dict[str, float] = field(default_factory=dict)  # read, load, chunk, embed, compress, write
    # Documents left as indexed before, because their file or folder exists but could not be read (the
    # reasons are in ``skipped``, flagged ``unreadable``): a failed read is not a deletion.
    kept_unreadable: int = 0

    @property
    def unreadable(self) -> list[Skipped]:
        """Files and folders that exist but could not be read: this run is incomplete for them."""
        return [s for s in self.skipped if s.unreadable]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["index_dir"], data["corpus"] = str(self.index_dir), str(self.corpus)
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data


def unreadable_message(report: IndexReport) -> str | None:
    """The line that ends a run some of whose files or folders could not be read; None for a clean run."""
    if not report.unreadable:
        return None
    kept = ""
    if report.kept_unreadable:
        kept = f"; {report.kept_unreadable} document(s) from them kept as indexed before"
    return (
        f"{len(report.unreadable)} file(s) or folder(s) could not be read{kept}: "
        "fix their permissions (or the disk) and run the same command again"
    )


def print_report(report: IndexReport) -> None:
    """The summary table (this run and the whole index), the skipped files, and where the index is."""
    console = Console()
    if not console.is_terminal:  # piped: as wide as the rows need, so no line breaks inside a path
        console = Console(width=100_000)
    stats = report.stats
    console.print(Text(f"index {report.index_dir}"), soft_wrap=True)
    table = Table(show_header=True)
    table.add_column("", style="bold")
    table.add_column("this run", justify="right")
    table.add_column("index total", justify="right")
    docs_total = f"{stats.documents:,}"
    table.add_row("documents added", f"{report.added:,}", docs_total)
    table.add_row("documents changed", f"{report.changed:,}", "")
    table.add_row("documents removed", f"{report.removed:,}", "")
    table.add_row("documents unchanged", f"{report.unchanged:,}", "")
    if report.kept_unreadable:
        table.add_row("documents kept (unreadable)", f"{report.kept_unreadable:,}", "")
    table.add_row("files skipped", f"{len(report.skipped):,}", "")
    table.add_row("chunks", f"{report.chunks:,}", f"{stats.chunks:,}")
    table.add_row("text tokens", f"{report.tokens:,}", f"{stats.tokens:,}")
    table.add_row("bytes per text token", "", f"{stats.bytes_per_token:.1f} ({stats.vector_dtype} vectors)")
    table.add_row("disk bytes per text token", "", f"{stats.disk_bytes_per_token:.1f}")
    table.add_row("time", f"{report.seconds:.1f} s", "")
    table.add_row("chunks/s", f"{report.chunks_per_second:.2f}", "")
    console.print(table)
    if report.skipped:
        _print_skipped(report.skipped)
    typer.echo(f"index written to {report.index_dir.resolve()}")


def _print_skipped(skipped: list[Skipped]) -> None:
    by_reason: dict[tuple[bool, str], list[str]] = defaultdict(list)
    for entry in skipped:
        by_reason[(entry.unreadable, entry.reason)].append(str(entry))
    # Plain lines, never wrapped, so paths can be copied and grepped.
    typer.echo(f"skipped {len(skipped)} file(s) or record(s):")
    shown = 0
    # Files that could not be read first (the run is incomplete for them), then the commonest reasons.
    for _, entries in sorted(by_reason.items(), key=lambda item: (not item[0][0], -len(item[1]))):
        for entry in entries[: max(0, MAX_SKIPPED_SHOWN - shown)]:
            typer.echo(f"  {entry}")
            shown += 1
    if len(skipped) > shown:
        typer.echo(f"  … and {len(skipped) - shown} more")
