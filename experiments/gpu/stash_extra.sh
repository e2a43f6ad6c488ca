# A call between stash_a2.sh and the launch (carry .gpuD): park what the issue-27 run adds, outside the repo.
# .gpuD/whl/*.whl (faiss-cpu, typer: the product-path evaluation's imports) go into $S/site; every
# .gpuD/*.tar.xz is unpacked into $S: blankqa.tar.xz (the blank-QA training set, as $S/blankqa) and
# ood.tar.xz (the out-of-distribution QA sets, as $S/ood/<set>/{corpus,questions.jsonl}).
set -e
D=${1:-.gpuD}
S=${S:-/root/stash}
mkdir -p $S/site
if ls $D/whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $S/site $D/whl/*.whl
fi
for archive in $D/*.tar.xz; do [ -f "$archive" ] && xz -d < "$archive" | tar -C $S -xf -; done
ls $S
