import os
import signal

import pytest

from ragcompress.store import Store, StoreLockedError
from tests.store import writer_child
from tests.store.helpers import add, build, make_doc


def _start(context, target, *args):
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    child.close()
    return process, parent


def test_second_writer_in_the_same_process_is_refused(tmp_path):
    store = build(tmp_path / "s", [make_doc(0)])
    other = Store.open(tmp_path / "s", readonly=False)
    writer = store.begin_update()
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        other.begin_update()
    writer.close()
    with other.begin_update() as second:
        add(second, make_doc(1))
    assert len(store.documents()) == 2


def test_writer_in_another_process_is_refused(tmp_path, fork_context):
    build(tmp_path / "s", [make_doc(0)]).close()
    with Store.open(tmp_path / "s", readonly=False).begin_update():
        process, conn = _start(fork_context, writer_child.try_lock, str(tmp_path / "s"))
        assert conn.poll(60)
        message = conn.recv()
        process.join(30)
    assert "being written by another process" in message and f"pid {os.getpid()}" in message


def test_lock_of_a_killed_writer_does_not_block(tmp_path, fork_context):
    build(tmp_path / "s", [make_doc(0)]).close()
    process, conn = _start(fork_context, writer_child.hold_lock, str(tmp_path / "s"))
    assert conn.poll(60)
    holder = conn.recv()
    store = Store.open(tmp_path / "s", readonly=False)
    with pytest.raises(StoreLockedError, match=f"pid {holder}"):
        store.begin_update()
    os.kill(holder, signal.SIGKILL)
    process.join(30)
    with store.begin_update() as writer:  # the kernel dropped the dead holder's flock
        add(writer, make_doc(1))
    assert len(store.documents()) == 2
