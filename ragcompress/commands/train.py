"""`ragcompress train`: train an AutoCompressor (the only training entry point of the library)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_command(
        config: Path | None = typer.Option(
            None, "--config", "-c", help="YAML or JSON file with TrainConfig keys"
        ),
        overrides: list[str] = typer.Argument(
            None, help="key=value overrides, e.g. max_steps=100 lora=false"
        ),
        print_config: bool = typer.Option(False, "--print-config", help="print the resolved config and exit"),
    ) -> None:
        """Train with the paper's recipe (substeps, random segments, stop-gradient, LoRA or full).

        Example: ragcompress train -c configs/default/stage1.yaml train_data='[data/corpus/austen/train.jsonl]'
        """
        import json

        from ragcompress.training import TrainConfig, train

        try:
            cfg = TrainConfig.load(config) if config else TrainConfig()
            cfg = cfg.override(overrides or [])
            if print_config:
                typer.echo(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
                return
            cfg.validate()
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            result = train(cfg)
        except ValueError as exc:  # bad data paths and the like: one line, no traceback
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        state = "finished" if result.finished else f"paused at step {result.steps}; run again to resume"
        typer.echo(f"training {state}; output in {result.output_dir}")
        if result.finished:
            typer.echo(f"final weights: {result.final_dir}")
