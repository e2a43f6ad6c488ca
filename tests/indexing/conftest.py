import pytest


@pytest.fixture(scope="session")
def tokenizer():
    """The default compressor's real SmolLM2 tokenizer (converted once into the cache, then ~1 s)."""
    from ragcompress.defaults import load_tokenizer

    return load_tokenizer()
