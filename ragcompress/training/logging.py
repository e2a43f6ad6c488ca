"""Training logs: a JSONL file of metrics, a rich progress line with ETA, TensorBoard when installed."""

from __future__ import annotations

import json
import time
from pathlib import Path


class MetricsLogger:
    def __init__(self, output_dir: Path, cfg, enabled: bool = True, start_step: int = 0):
        self.enabled = enabled
        self.cfg = cfg
        self.every = max(1, cfg.log_every)
        self.start_step = start_step
        self.started = time.perf_counter()
        self.file = None
        self.writer = None
        self.progress = None
        if not enabled:
            return
        self.file = open(Path(output_dir) / "metrics.jsonl", "a", encoding="utf-8")
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(output_dir) / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.writer = None
        if cfg.progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
            )
            self.task = self.progress.add_task("train", total=cfg.max_steps, completed=start_step, status="")
            self.progress.start()

    def log(self, metrics: dict, force: bool = False) -> None:
        if not self.enabled:
            return
        step = metrics["step"]
        done = step - self.start_step
        elapsed = time.perf_counter() - self.started
        metrics["eta_seconds"] = elapsed / max(done, 1) * (self.cfg.max_steps - step)
        if force or step % self.every == 0:
            self.file.write(json.dumps(metrics) + "\n")
            self.file.flush()
            if self.writer is not None:
                for key, value in metrics.items():
                    if key != "step" and isinstance(value, (int, float)):
                        self.writer.add_scalar(key, value, step)
        if self.progress is not None:
            status = (
                f"loss {metrics.get('loss', metrics.get('qa_loss', float('nan'))):.3f} "
                f"{metrics['tokens_per_second']:,.0f} tok/s"
            )
            self.progress.update(self.task, completed=step, status=status)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.writer is not None:
            self.writer.close()
        if self.file is not None:
            self.file.close()
