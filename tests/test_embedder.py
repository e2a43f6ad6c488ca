"""`Embedder`: loading from a spec, identity (id + dimension), `encode`, one error type."""

from __future__ import annotations

import numpy as np
import pytest

from ragcompress import Embedder, ModelLoadError, defaults
from ragcompress.embedder import spec_id
from ragcompress.store import EmbedderInfo
from tests.indexing.pipeline_helpers import save_tiny_embedder

TEXTS = ["Pelville is a small harbour town.", "The Zarnok river rises in the Karth Mountains.", "x"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_embedder(tmp_path_factory.mktemp("models") / "tiny-embedder")


@pytest.fixture(scope="module")
def loaded(tiny_dir) -> Embedder:
    return Embedder.load(tiny_dir, device="cpu")


def test_load_records_id_and_dimension(loaded, tiny_dir):
    assert loaded.id == str(tiny_dir) == spec_id(tiny_dir)
    assert loaded.dim == 32
    assert loaded.info == EmbedderInfo(str(tiny_dir), 32)


def test_encode_gives_one_float32_row_per_text_as_the_model_does(loaded):
    rows = loaded.encode(TEXTS)
    assert rows.dtype == np.float32 and rows.shape == (len(TEXTS), 32)
    reference = loaded.model.encode(TEXTS, convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(rows, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.encode(TEXTS, batch_size=1), rows, rtol=1e-4, atol=1e-5)
    assert loaded.encode([]).shape == (0, 32)
    assert not np.allclose(rows[0], rows[1])


def test_default_spellings_share_one_id():
    assert spec_id(None) == spec_id("default") == spec_id(defaults.DEFAULT_EMBEDDER_ID)
    assert spec_id(None) == defaults.DEFAULT_EMBEDDER_ID


def test_a_spec_that_will_not_load_is_one_model_load_error(tmp_path):
    missing = tmp_path / "no-such-embedder"
    with pytest.raises(ModelLoadError) as caught:
        Embedder.load(missing, device="cpu")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"cannot load the embedder {str(missing)!r}: ")


def test_of_accepts_specs_embedders_models_and_the_older_tuple(loaded, tiny_dir):
    assert Embedder.of(loaded) is loaded
    bare = Embedder.of(loaded.model)
    assert bare.id is None and bare.info is None and bare.dim == 32
    named = Embedder.of((loaded.model, "my-embedder"))
    assert named.info == EmbedderInfo("my-embedder", 32)
    assert Embedder.of(str(tiny_dir), device="cpu").info == loaded.info
    with pytest.raises(TypeError, match="an embedder is None, a spec"):
        Embedder.of(3.5)
