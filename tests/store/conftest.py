import multiprocessing

import pytest


@pytest.fixture(scope="session")
def fork_context():
    """A forkserver that has imported the store once; each child is then a cheap fork of it.

    Forking the test process itself would be unsafe (torch/FAISS thread pools may already run in it)
    and spawning a fresh interpreter per child costs seconds of imports.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.store.writer_child"])
    return context
