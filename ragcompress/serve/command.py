"""`ragcompress serve --index DIR`: load the models once and answer over HTTP (the ``serve`` extra)."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import typer

from ragcompress.commands.ask import COMPILE_DECODE_HELP, compile_setting, one_line, open_retriever
from ragcompress.serve import DEFAULT_MAX_BATCH, DEFAULT_QUEUE_SIZE, DEFAULT_WINDOW_S


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _why(error: Exception) -> str:
    why = one_line(error)
    return why if why == type(error).__name__ else f"{type(error).__name__}: {why}"


def warm_up_or_fail(retriever, compile_decode: str, max_batch: int) -> None:
    """``retriever.warm_up()`` at each batch size the fast decode path rounds a batch of at most
    ``max_batch`` questions to; if it fails, the retriever is closed and the reason is one error line.

    With ``--compile-decode auto`` a warm-up that fails while the step is compiled is tried once more
    without compiling, with the reason on one warning line: compiling is a default there, not a request.
    """
    from ragcompress.modeling.fast_decode import batch_bucket

    batches = sorted({batch_bucket(b) for b in range(1, max_batch + 1)})
    try:
        try:
            retriever.warm_up(batches=batches)
        except Exception as error:
            if compile_decode != "auto" or not retriever.compile_decode:
                raise
            typer.echo(
                f"warning: compiling the decode step failed ({_why(error)}); answering without it", err=True
            )
            retriever.compile_decode = False
            retriever.warm_up(batches=batches)
    except Exception as error:
        retriever.close()
        hint = "; start with --compile-decode off" if compile_decode not in ("off", "auto") else ""
        _fail(f"answering a warm-up question failed ({_why(error)}){hint}")


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port), so the address is known before serving."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        _fail(f"cannot listen on {host}:{port}: {error.strerror or error}")
    return sock


def serve(
    index: Path | None = typer.Option(
        None, "--index", help="index directory (default: the one `ragcompress index` built last)"
    ),
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, help="port (0: any free one, printed at start)"),
    max_batch: int = typer.Option(DEFAULT_MAX_BATCH, min=1, help="most questions answered in one batch"),
    batch_window_ms: float = typer.Option(
        DEFAULT_WINDOW_S * 1000, min=0, help="how long a question waits for others to batch with"
    ),
    queue_size: int = typer.Option(DEFAULT_QUEUE_SIZE, min=1, help="waiting requests beyond this get 503"),
    model: str | None = typer.Option(None, help="compressor (default: the one the index was built with)"),
    embedder: str | None = typer.Option(None, help="embedder (default: the one the index was built with)"),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1, ... (default: cuda if available)"),
    compile_decode: str = typer.Option(
        "auto", help=COMPILE_DECODE_HELP + ", paid before serving starts; auto: dynamic on a GPU, else off"
    ),
    log_level: str = typer.Option("warning", help="uvicorn's log level: info prints every request"),
) -> None:
    """Serve answers from an index over HTTP: POST /answer, /search, /v1/chat/completions; GET /health, /info."""
    try:
        import uvicorn

        from ragcompress.serve.app import create_app
    except ImportError as error:
        _fail(
            f"`ragcompress serve` needs the serve extra ({error.name} is missing): pip install 'ragcompress[serve]'"
        )
    from ragcompress.serve.batching import Batcher

    compiled = compile_setting(compile_decode, "auto")
    sock = _listen(host, port)  # before loading, so a taken port fails in a moment
    started = time.perf_counter()

    def load():
        # In the worker thread; a failure there comes back from start() and is reported in one line.
        retriever = open_retriever(index, model, embedder, device, False if compiled == "auto" else compiled)
        if retriever.device.type == "cuda":  # compilation and first graph captures before the first request
            if compiled == "auto":  # as fast as compiling per shape, for two compilations (benchmarks)
                retriever.compile_decode = "dynamic"
            warm_up_or_fail(retriever, compile_decode, max_batch)
        return retriever

    batcher = Batcher(load, max_batch=max_batch, window=batch_window_ms / 1000, queue_size=queue_size)
    try:
        batcher.start()
    except typer.Exit:
        sock.close()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    typer.echo(
        f"serving {batcher.index_dir} on http://{shown}:{bound_port} "
        f"(models loaded in {time.perf_counter() - started:.1f} s, answering on {batcher.device} in "
        f"{batcher.dtype}; Ctrl-C stops)"
    )
    sys.stdout.flush()
    config = uvicorn.Config(create_app(batcher), log_level=log_level, timeout_graceful_shutdown=5)
    server = _server_class()(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the signal again after its shutdown; asyncio may not
        pass
    finally:
        batcher.close()
        sock.close()
    if server.stopped_by is not None:
        raise typer.Exit(128 + server.stopped_by)  # as any program stopped by that signal: 130 for Ctrl-C


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, remembering the signal that stopped it: whether uvicorn's raising that signal
        again after shutdown reaches us depends on asyncio's timing, so the exit status is set here."""

        stopped_by: int | None = None

        def handle_exit(self, sig: int, frame) -> None:
            self.stopped_by = sig
            super().handle_exit(sig, frame)

    return Server


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
