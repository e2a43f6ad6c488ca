"""The Ray engine builds the same store as the local engine (local Ray cluster, 2 CPUs, tiny compressor)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from indexing.pipeline import IndexingError, index_corpus
from ragcompress.store import Store
from tests.indexing import pipeline_helpers as helpers
from tests.indexing.pipeline_helpers import CHUNK_TOKENS, OVERLAP, assert_same_store, snapshot, write_corpus

ray = pytest.importorskip("ray", reason="the ray engine is optional: pip install 'ragcompress[ray]'")

private_data_root, tiny_compressor_dir = helpers.private_data_root, helpers.tiny_compressor_dir


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_equals_local_engine(tmp_path, local_ray, tiny_compressor_dir):
    corpus = write_corpus(tmp_path / "corpus")
    built = {}
    for engine, workers in (("local", None), ("ray", 2)):
        report = index_corpus(
            corpus,
            tmp_path / engine,
            model=tiny_compressor_dir,
            chunk_tokens=CHUNK_TOKENS,
            overlap=OVERLAP,
            engine=engine,
            workers=workers,  # two actors, so batches really interleave between workers
            batch_size=3,
            commit_every=2,
            progress=False,
        )
        assert report.engine == engine and report.added == 6
        built[engine] = snapshot(Store.open(tmp_path / engine))
    assert_same_store(built["ray"], built["local"], atol=1e-5)
    assert built["ray"]["ids"] == built["local"]["ids"]
    manifests = [replace(Store.open(tmp_path / e).manifest, created_at="") for e in ("ray", "local")]
    assert manifests[0] == manifests[1]


def test_ray_engine_reports_a_model_that_will_not_load(tmp_path, local_ray):
    corpus = write_corpus(tmp_path / "corpus", ["rivers"])
    with pytest.raises(IndexingError, match="cannot load the compressor") as error:
        index_corpus(corpus, tmp_path / "index", model=tmp_path / "corpus", engine="ray", progress=False)
    assert "\n" not in str(error.value) and "neither an adapter" in str(error.value)
    assert not (tmp_path / "index").exists()
