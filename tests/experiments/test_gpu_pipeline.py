"""experiments/gpu/pipeline_v2.sh and watch_v1.sh, dry-run on CPU: which command runs on which GPUs.

The GPU machine is four GPUs here (a fake ``nvidia-smi``), and ``python3`` is a fake that records each
command with its ``CUDA_VISIBLE_DEVICES`` and makes the ``final`` folder a training stage would write.
So the tests check the orchestration (devices, work folders, overrides, export, ``all.done``, what a
watch returns), not the training, which tests/training covers on tiny models.
"""

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from ragcompress.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]

FAKE_PYTHON = r"""#!/bin/bash
echo "GPUS=${CUDA_VISIBLE_DEVICES:-all} $*" >> "$FAKE_LOG"
args=("$@"); cmd=""; work=""
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ "${args[$i]}" == *train_default.py ]] && cmd=${args[$((i + 1))]}
  [ "${args[$i]}" = --work ] && work=${args[$((i + 1))]}
done
case "$cmd" in stage1|stage2) mkdir -p "$work/$cmd/final" && echo "finished in 1 s" ;; esac
true
"""

FAKE_NVIDIA_SMI = """#!/bin/bash
if [ "$1" = -L ]; then for i in 0 1 2 3; do echo "GPU $i: NVIDIA H200 (UUID: GPU-$i)"; done
else for i in 0 1 2 3; do echo "NVIDIA H200, 0 %, 0 MiB"; done; fi
"""


def _machine(tmp_path):
    """A stash as stash_a2.sh / stash_stage1.sh leave it, the repo copied into it, fake tools first on PATH."""
    stash = tmp_path / "stash"
    (stash / "work" / "stage2a" / "final").mkdir(parents=True)
    (stash / "repo").mkdir()
    shutil.copytree(REPO / "scripts", stash / "repo" / "scripts")  # as launch_v1.sh copies them
    shutil.copytree(REPO / "experiments" / "gpu", stash / "repo" / "experiments" / "gpu")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python3", FAKE_PYTHON), ("nvidia-smi", FAKE_NVIDIA_SMI)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "commands.log"
    env = {
        **{k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"},
        "S": str(stash),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_LOG": str(log),
    }
    return stash, env, log


def _run(script, env, *args, **extra):
    done = subprocess.run(
        ["bash", f"experiments/gpu/{script}", *args],
        cwd=Path(env["S"]) / "repo",
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def _watch(tmp_path, env):
    """Run a 5-second watch after the job; returns the folder it filled (its $OUT)."""
    out = tmp_path / "out"
    out.mkdir()
    _run("watch_v1.sh", env, "5", OUT=str(out))
    return out


def _commands(log):
    return log.read_text().splitlines()


def test_two_stage2_variants_share_the_machine_in_their_own_folders(tmp_path):
    stash, env, log = _machine(tmp_path)
    _run(
        "pipeline_v2.sh",
        env,
        PHASE="stage2more@A+stage2more@B",
        STAGE2_S="60",
        QA_ENTITIES="32000",
        STAGE2_EXTRA='qa_kind_weights={"name":2} repeat_fraction=0.25',
        EXTRA_B='qa_kind_weights={"name":3}',
    )
    work = stash / "work"
    assert (work / "all.done").is_file()
    lines = _commands(log)
    train = [c for c in lines if " stage2 --work" in c]
    evals = [c for c in lines if " eval --work" in c]
    assert len(train) == 2 and len(evals) == 2
    a = next(c for c in train if f"--work {work}/A " in c)
    b = next(c for c in train if f"--work {work}/B " in c)
    # each variant trains data-parallel on its own half of the GPUs, from the shared parked adapter
    assert a.startswith("GPUS=0,1 -m torch.distributed.run --standalone --nproc_per_node=2 ")
    assert b.startswith("GPUS=2,3 -m torch.distributed.run --standalone --nproc_per_node=2 ")
    for cmd, name in ((a, "A"), (b, "B")):
        assert f"init_adapter={work}/{name}/stage2a/final" in cmd
        assert "--qa-entities 32000" in cmd and 'qa_kind_weights={"name":2}' in cmd
        assert (work / name / "stage2a").resolve() == (work / "stage2a").resolve()
    # B's own override comes after the common ones, so it wins; A has none
    assert 'qa_kind_weights={"name":3}' not in a
    assert b.index('qa_kind_weights={"name":3}') > b.index('qa_kind_weights={"name":2}')
    overrides = b.split(" --set ", 1)[1].split()
    assert TrainConfig().override(overrides).qa_kind_weights == {"name": 3}
    assert {c.split()[0] for c in evals} == {"GPUS=0,1", "GPUS=2,3"}
    assert not [c for c in lines if " export " in c]  # variants never write the package's adapter
    assert "phase stage2more@A on GPUs 0,1" in (work / "pipeline.log").read_text()

    # the card's evaluation leaves its indexes (tens of MB) beside its results; they stay on the machine
    for folder in (work / "eval", work / "A" / "eval"):
        (folder / "index-stage2" / "shards").mkdir(parents=True, exist_ok=True)
        (folder / "index-stage2" / "shards" / "00000.safetensors").write_bytes(b"0" * 1000)
        (folder / "qa-stage2.json").write_text("{}")
    # a watch after the job returns each variant's final adapter and the logs
    out = _watch(tmp_path, env)
    assert sorted(p.name for p in out.iterdir()) == [
        "A-stage2-final.tar",
        "B-stage2-final.tar",
        "results.tar",
    ]
    with tarfile.open(out / "results.tar") as tar:
        names = set(tar.getnames())
    assert {
        "A/stage2.log",
        "B/stage2.log",
        "pipeline.log",
        "eval/qa-stage2.json",
        "A/eval/qa-stage2.json",
    } <= names
    assert not [n for n in names if "index-" in n]


def test_two_stage1_variants_continue_the_parked_adapter_with_their_own_overrides(tmp_path):
    stash, env, log = _machine(tmp_path)
    shutil.copytree(stash / "work" / "stage2a", stash / "work" / "stage1a")
    _run(
        "pipeline_v2.sh", env, PHASE="stage1more@A+stage1more@B", STAGE1B_S="60", EXTRA_B="distill_weight=1.0"
    )
    work = stash / "work"
    lines = _commands(log)
    train = [c for c in lines if " stage1 --work" in c]
    a = next(c for c in train if f"--work {work}/A " in c)
    b = next(c for c in train if f"--work {work}/B " in c)
    assert a.startswith("GPUS=0,1 ") and b.startswith("GPUS=2,3 ")
    for cmd, name in ((a, "A"), (b, "B")):
        assert f"init_adapter={work}/{name}/stage1a/final" in cmd
    assert "distill_weight=1.0" in b and "distill_weight" not in a
    assert TrainConfig().override(b.split(" --set ", 1)[1].split()).distill_weight == 1.0
    evals = [c for c in lines if " eval --work" in c]
    assert len(evals) == 2 and all("--models stage1 stage1a" in c for c in evals)
    assert (work / "all.done").is_file()

    out = _watch(tmp_path, env)
    assert sorted(p.name for p in out.iterdir()) == [
        "A-stage1-final.tar",
        "B-stage1-final.tar",
        "results.tar",
    ]


def test_stage1_then_stage2_each_take_their_own_overrides(tmp_path):
    stash, env, log = _machine(tmp_path)
    shutil.copytree(stash / "work" / "stage2a", stash / "work" / "stage1a")
    _run(
        "pipeline_v2.sh",
        env,
        PHASE="stage2",
        STAGE1B_S="60",
        STAGE2_S="60",
        STAGE1_EXTRA="distill_weight=1.0",
        STAGE2_EXTRA="distill_weight=0.5",
        EVAL_MODELS="stage2 stage1",
    )
    lines = _commands(log)
    stage1 = next(c for c in lines if " stage1 --work" in c)
    stage2 = next(c for c in lines if " stage2 --work" in c)
    assert "init_adapter=" in stage1 and stage1.endswith("distill_weight=1.0")
    assert "distill_weight=0.5" in stage2 and "distill_weight=1.0" not in stage2
    assert any(" eval --work" in c and "--models stage2 stage1" in c for c in lines)
    assert len([c for c in lines if " export " in c]) == 1


def test_ablation_and_continuation_split_the_gpus(tmp_path):
    stash, env, log = _machine(tmp_path)
    _run(
        "pipeline_v2.sh",
        env,
        PHASE="ablate+stage2more",
        ABLATE_S="60",
        ABLATE_A="",
        ABLATE_B="lora_r=24 lora_alpha=48",
        STAGE2_S="60",
    )
    work = stash / "work"
    lines = _commands(log)
    stage1 = [c for c in lines if " stage1 --work" in c]
    assert sorted(c.split()[0] for c in stage1) == ["GPUS=0", "GPUS=1"]
    assert "lora_r=24" in next(c for c in stage1 if f"--work {work}/ablate-B " in c)
    assert "lora_r=24" not in next(c for c in stage1 if f"--work {work}/ablate-A " in c)
    stage2 = [c for c in lines if " stage2 --work" in c]
    assert len(stage2) == 1 and stage2[0].startswith("GPUS=2,3 -m torch.distributed.run")
    assert len([c for c in lines if " export " in c]) == 1  # the continuation exports, once
    assert (work / "all.done").is_file()


def test_a_deadline_cuts_the_training_budget_so_the_job_ends_before_the_machine_goes_back(tmp_path):
    """The twelfth session lost its last 120 steps and the evaluation: the machine went back 30 minutes
    after it started, before the job (sized by STAGE2_S alone) ended. DEADLINE now caps every budget."""
    stash, env, log = _machine(tmp_path)
    now = int(subprocess.run(["date", "+%s"], capture_output=True, text=True).stdout)
    _run("pipeline_v2.sh", env, PHASE="stage2more", STAGE2_S="1300", DEADLINE=str(now + 700), RESERVE_S="300")
    (stage2,) = [c for c in _commands(log) if " stage2 --work" in c]
    seconds = int(stage2.split("--max-seconds ", 1)[1].split()[0])
    assert 390 <= seconds <= 400  # 700 s left, 300 s kept for generation, evaluation, export and the watch
    assert "budget 1300 s cut to" in (stash / "work" / "pipeline.log").read_text()

    # far from the deadline, or without one, the budget stays as asked; never below 60 s
    for deadline, expected in ((str(now + 5000), 1300), ("", 1300), (str(now + 100), 60)):
        shutil.rmtree(stash / "work" / "stage2", ignore_errors=True)
        log.unlink()
        _run("pipeline_v2.sh", env, PHASE="stage2more", STAGE2_S="1300", DEADLINE=deadline)
        (stage2,) = [c for c in _commands(log) if " stage2 --work" in c]
        assert f"--max-seconds {expected} " in stage2


def test_stage2more_with_the_issue27_sets_trains_on_both_and_scores_both_adapters_out_of_distribution(
    tmp_path,
):
    stash, env, log = _machine(tmp_path)
    for name in ("realdocs", "synthqa-ood"):  # as stash_extra.sh unpacks ood.tar.xz
        (stash / "ood" / name / "corpus").mkdir(parents=True)
        (stash / "ood" / name / "questions.jsonl").write_text("")
    qa_data = f'qa_data=["{stash}/work/synthqa-train","{stash}/blankqa"]'
    _run("pipeline_v2.sh", env, PHASE="stage2more", STAGE2_S="60", STAGE2_EXTRA=qa_data)
    work = stash / "work"
    lines = _commands(log)
    train = next(c for c in lines if " stage2 --work" in c)
    assert train.endswith(qa_data)  # after the defaults, so the mix replaces the synthetic set alone
    assert TrainConfig().override([qa_data]).qa_data == [f"{stash}/work/synthqa-train", f"{stash}/blankqa"]
    scored = [c for c in lines if " -m ragcompress eval qa " in c]
    assert len(scored) == 4
    for model in ("stage2", "stage2a"):
        for name in ("realdocs", "synthqa-ood"):
            command = next(c for c in scored if f"--model {work}/{model}/final " in c and f"ood/{name}/" in c)
            assert f"--out {work}/eval/ood-{model}-{name}.json" in command
            assert "--modes none,fused,fused-extractive,hybrid,text" in command
            assert "--embedder" not in command  # no carried embedder: the package's default
    card = next(c for c in lines if " eval --work" in c)
    assert "--models stage2 stage2a " in card  # the adapter it continued is measured on the same GPU
    assert "--retrieval" not in card and "--embedder" not in card  # QA through an index, the default embedder
    assert lines.index(scored[0]) > lines.index(card)
    assert "ood eval done" in (work / "pipeline.log").read_text()
    assert (work / "all.done").is_file()

    # with the fp16 embedder parked as $S/minilm (stash_extra.sh .gpuE), every evaluation reads it
    (stash / "minilm").mkdir()
    log.unlink()
    _run("pipeline_v2.sh", env, PHASE="stage2more", STAGE2_S="60", STAGE2_EXTRA=qa_data)
    lines = _commands(log)
    scored = [c for c in lines if " -m ragcompress eval qa " in c]
    assert len(scored) == 4 and all(f"--embedder {stash}/minilm " in c for c in scored)
    # and the card's evaluation, whose QA table goes through an index of the test split too
    assert f"--embedder {stash}/minilm " in next(c for c in lines if " eval --work" in c)


def test_stash_extra_unpacks_the_carried_archives_into_the_stash(tmp_path):
    carried = tmp_path / ".gpuD"
    (tmp_path / "src" / "blankqa" / "corpus").mkdir(parents=True)
    (tmp_path / "src" / "blankqa" / "questions.jsonl").write_text('{"id": "q"}\n')
    carried.mkdir()
    subprocess.run(
        f"tar -C {tmp_path / 'src'} -cf - blankqa | xz > {carried / 'blankqa.tar.xz'}", shell=True, check=True
    )
    stash = tmp_path / "stash"
    done = subprocess.run(
        ["bash", str(REPO / "experiments" / "gpu" / "stash_extra.sh"), str(carried)],
        env={**os.environ, "S": str(stash)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (stash / "blankqa" / "questions.jsonl").read_text() == '{"id": "q"}\n'


def test_launch_copies_every_package_the_jobs_import():
    """The jobs run from the copy launch_v1.sh makes in $S/repo: each package pyproject.toml ships must be in it
    (the first issue-27 launch lost minutes to a copy without ragcompress_tools/ and indexing/)."""
    import re

    include = re.search(r"include = \[(.*?)\]", (REPO / "pyproject.toml").read_text()).group(1)
    packages = [name.strip().strip('"').rstrip("*") for name in include.split(",") if name.strip()]
    copy = next(
        line for line in (REPO / "experiments/gpu/launch_v1.sh").read_text().splitlines() if "cp -r " in line
    )
    copied = copy.split("cp -r ", 1)[1].split("$S/repo/", 1)[0].split()
    assert packages and set(packages) <= set(copied), (
        f"launch_v1.sh copies {copied}, pyproject ships {packages}"
    )
    for name in packages:
        assert (REPO / name).is_dir()
