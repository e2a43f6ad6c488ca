import errno
import multiprocessing
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tokenizer():
    """The default compressor's real SmolLM2 tokenizer (converted once into the cache, then ~1 s)."""
    from ragcompress.defaults import load_tokenizer

    return load_tokenizer()


@pytest.fixture
def deny_reads(monkeypatch):
    """``deny_reads("locked.txt")``: reading files of that name fails with EACCES, as an unreadable file's
    read would. Tests may run as root, for whom ``chmod 000`` does not stop reads."""
    from indexing import readers

    def deny(name: str) -> None:
        real_read = readers._read_bytes

        def read_bytes(path: Path) -> bytes:
            if path.name == name:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_read(path)

        monkeypatch.setattr(readers, "_read_bytes", read_bytes)

    return deny


@pytest.fixture(scope="session")
def fork_context():
    """A forkserver that imported the pipeline once; each indexing or reading child is a fork of it
    (see tests/indexing/index_child.py)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.indexing.index_child"])
    return context
