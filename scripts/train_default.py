"""Reproduce the embedded default compressor (ragcompress/default_adapter) on any single GPU.

The training stages also run data-parallel over the GPUs of one host:
``torchrun --standalone --nproc_per_node=N scripts/train_default.py stage2 ...`` (each GPU reads its
own share of every batch, so the global batch is N times the config's).

    python scripts/build_corpus.py --out data/corpus                 # offline corpus (CPU, ~1 min)
    python scripts/train_default.py stage1 --work runs/default         # compression (LM) training
    python scripts/train_default.py stage2 --work runs/default         # fused retrieval-QA answer format
    python scripts/train_default.py eval   --work runs/default         # PPL (Table 1 protocol) + QA via an index
    python scripts/train_default.py export --work runs/default         # copy the adapter into the package

Every stage resumes from its last checkpoint, so a stage can be spread over several shorter jobs with
``--max-seconds``. Configs: configs/default/stage{1,2}.yaml; ``--set key=value`` overrides any key.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the card's QA table: every mode on the same index, k = 5
QA_MODES = ["none", "text", "fused", "fused-extractive", "hybrid"]

SOURCES = ("austen", "shakespeare", "python-docs", "linux-docs", "gcide")


def corpus_paths(corpus: Path, split: str) -> list[str]:
    paths = [corpus / source / f"{split}.jsonl" for source in SOURCES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(
            f"{missing[0]} is missing: run `python scripts/build_corpus.py --out {corpus}` first"
        )
    return [str(p) for p in paths]


def synthqa_dir(work: Path, split: str, entities: int, seed: int) -> Path:
    """`work/synthqa-<split>`, generated once per (split, entities, seed).

    `params.json` records what the folder holds, so asking for another size (`--qa-entities`) rebuilds it
    instead of silently reusing the old questions.
    """
    from ragcompress.data.qa_dataset import write
    from ragcompress_tools.synthqa import generate

    target = work / f"synthqa-{split}"
    params = {"split": split, "entities": entities, "seed": seed}
    stamp = target / "params.json"

    def ready() -> bool:
        try:
            return (target / "questions.jsonl").is_file() and json.loads(stamp.read_text()) == params
        except (OSError, ValueError):
            return False

    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 writes it, the others wait
        deadline = time.time() + 600
        while not ready() and time.time() < deadline:
            time.sleep(1)
    elif not ready():
        stamp.unlink(missing_ok=True)
        write(generate(split, entities, seed), target, overwrite=True)
        stamp.write_text(json.dumps(params) + "\n")
    return target


def stage_config(name: str, args, overrides: list[str]):
    from ragcompress.training import TrainConfig

    cfg = TrainConfig.load(ROOT / "configs" / "default" / f"{name}.yaml")
    values = [f"output_dir={args.work / name}", f"model={args.base}"]
    if args.max_seconds is not None:
        values.append(f"max_seconds={args.max_seconds}")
    if not args.no_lm:
        values += [
            f"train_data={json.dumps(corpus_paths(args.corpus, 'train'))}",
            f"valid_data={json.dumps(corpus_paths(args.corpus, 'validation'))}",
        ]
    if name == "stage2":
        qa = synthqa_dir(args.work, "train", args.qa_entities, seed=0)
        values += [f"qa_data={json.dumps([str(qa)])}", f"init_adapter={args.work / 'stage1' / 'final'}"]
    cfg = cfg.override(values + overrides)
    _refuse_heldout_qa(cfg.qa_data)
    return cfg


def _refuse_heldout_qa(dirs: list[str]) -> None:
    """Stop before loading any model if a `--set qa_data=...` names a held-out evaluation set."""
    from ragcompress.eval.heldout import HeldOutDataError, refuse_heldout_dir

    for directory in dirs:
        try:
            refuse_heldout_dir(directory)
        except HeldOutDataError as error:
            raise SystemExit(str(error)) from None


def run_stage(name: str, args) -> None:
    from ragcompress.training import train

    cfg = stage_config(name, args, args.set)
    began = time.time()
    result = train(cfg)
    state = "finished" if result.finished else f"paused at step {result.steps} (run again to resume)"
    print(f"{name}: {state} in {time.time() - began:.0f} s; output in {cfg.output_dir}", flush=True)


def run_eval(args) -> None:
    """The card's tables for each of ``--models``: perplexity with compressed context on the test split of
    every corpus source, and QA on the synthetic test split through the product (the test documents
    indexed with the defaults, every question answered by ``Retriever.answer_batch``; eval/index_qa.py)."""
    import torch

    from ragcompress.compressor import Compressor
    from ragcompress.embedder import Embedder
    from ragcompress.eval.index_qa import IndexSettings, load_qa_set, run_sweep
    from ragcompress.eval.ppl import evaluate_ppl, labelled_windows
    from ragcompress.eval.qa_report import save_report

    out = args.work / "eval"
    out.mkdir(parents=True, exist_ok=True)
    test_paths = corpus_paths(args.corpus, "test") if "ppl" in args.tables else []
    qa_test = embedder = None
    if "qa" in args.tables:
        qa_test = load_qa_set(synthqa_dir(args.work, "test", 300, seed=0), limit=args.qa_limit)
        embedder = Embedder.load(args.embedder)  # once: every label's index is embedded the same way
    for label in args.models:
        if args.base != "smollm2":
            spec = args.base if label == "base" else args.work / label / "final"
        else:
            spec = "base" if label == "base" else args.work / label / "final"
        compressor = Compressor.load(spec)
        if "ppl" in args.tables:
            windows, sources = labelled_windows(
                test_paths, compressor.tokenizer, 512 * 4, args.ppl_windows, per_path=args.ppl_per_source
            )
            ppl = evaluate_ppl(compressor.model, windows, 512, 3, batch_size=8, sources=sources)
            ppl.meta = {"model": label, "data": "test split of every corpus source"}
            ppl.save(out / f"ppl-{label}.json")
            print(f"[{label}]\n{ppl.table()}", flush=True)
        if qa_test is not None:
            results = run_sweep(
                qa_test,
                IndexSettings(model=str(spec), embedder=args.embedder),
                ["fp16"],
                [5],
                QA_MODES,
                index=out / f"index-{label}",
                models=(compressor, embedder),
                rebuild=True,  # a label's adapter may have changed since the last evaluation
                batch_size=32,
            )
            save_report(results, out / f"qa-{label}.json")
            print(f"[{label}]\n{results[0].table()}", flush=True)
        del compressor
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def finalize(args) -> None:
    """Turn a paused stage's latest checkpoint into its final adapter (e.g. when GPU time ran out).

    ``--out`` writes it elsewhere than ``<work>/<stage>/final``: experiments/gpu/salvage.sh uses that for a
    stage that is still training, whose own ``final`` must stay the training's to write.
    """
    from ragcompress.training import TrainConfig
    from ragcompress.training.checkpoint import latest_checkpoint, load_checkpoint
    from ragcompress.training.lora import save_adapter, training_meta
    from ragcompress.training.trainer import _optimizer, build_model, prepare_for_training

    stage_dir = args.work / args.which
    checkpoint = latest_checkpoint(stage_dir)
    if checkpoint is None:
        raise SystemExit(f"{stage_dir} has no checkpoint to finalize")
    recorded = TrainConfig.load(checkpoint / "config.json")
    cfg = recorded.override(["init_adapter=null"])  # the checkpoint already holds the continued weights
    model, _ = build_model(cfg, __import__("torch").device("cpu"), bf16=False)
    model = prepare_for_training(model, cfg, __import__("torch").device("cpu"))
    state = load_checkpoint(checkpoint, model, _optimizer(model, cfg))
    out = getattr(args, "out", None) or stage_dir / "final"
    save_adapter(
        model,
        out,
        training_meta(
            recorded,
            state["step"],
            finalized_from=checkpoint.name,
            **({"data_parallel": state["world"]} if state.get("world", 1) > 1 else {}),
        ),
    )
    print(f"{out} written from {checkpoint.name}")


def _portable(value):
    """Training-machine paths in the shipped metadata, cut to their last three parts (corpus/austen/train.jsonl)."""
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return "/".join(Path(value).parts[-3:])
    return value


def export(args) -> None:
    from ragcompress.defaults import ADAPTER_DIR

    source = args.work / "stage2" / "final"
    if not (source / "adapter_model.safetensors").is_file():
        raise SystemExit(f"{source} holds no adapter: run stage2 first")
    ADAPTER_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_model.safetensors", "adapter_config.json", "ragcompress.json"):
        shutil.copy2(source / name, ADAPTER_DIR / name)
    config = json.loads((ADAPTER_DIR / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "smollm2-135m-instruct"  # not a path of the training machine
    (ADAPTER_DIR / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    meta = json.loads((ADAPTER_DIR / "ragcompress.json").read_text())
    if args.parent is not None:  # the adapter this one continued, when its metadata was finalized without it
        from ragcompress.training.lora import with_parent

        meta = with_parent(meta, args.parent)
    meta["config"] = {key: _portable(value) for key, value in meta.get("config", {}).items()}
    (ADAPTER_DIR / "ragcompress.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    size = sum(p.stat().st_size for p in ADAPTER_DIR.iterdir())
    print(f"exported {source} → {ADAPTER_DIR} ({size / 2**20:.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["stage1", "stage2", "eval", "export", "finalize"])
    parser.add_argument("--which", default="stage2", help="finalize: the stage whose checkpoint to promote")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="finalize: write the adapter here (default <work>/<which>/final)",
    )
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "default")
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus")
    parser.add_argument("--base", default="smollm2", help="base model: smollm2 or a local model directory")
    parser.add_argument(
        "--max-seconds", type=float, default=None, help="pause (with a checkpoint) after this"
    )
    parser.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    parser.add_argument("--no-lm", action="store_true", help="stage 2 without the language-modelling mix")
    parser.add_argument("--qa-entities", type=int, default=2000)
    parser.add_argument(
        "--parent", type=Path, default=None, help="export: record this adapter as the one training continued"
    )
    parser.add_argument("--models", nargs="*", default=["base", "stage1", "stage2"])
    parser.add_argument(
        "--embedder",
        default="default",
        help="eval: the embedder of the QA index (a sentence-transformers path)",
    )
    parser.add_argument("--ppl-windows", type=int, default=200)
    parser.add_argument("--ppl-per-source", type=int, default=24)
    parser.add_argument("--qa-limit", type=int, default=None)
    parser.add_argument("--tables", nargs="*", choices=["ppl", "qa"], default=["ppl", "qa"])
    args = parser.parse_args()
    if args.stage in ("stage1", "stage2"):
        run_stage(args.stage, args)
    elif args.stage == "eval":
        run_eval(args)
    elif args.stage == "finalize":
        finalize(args)
    else:
        export(args)


if __name__ == "__main__":
    main()
