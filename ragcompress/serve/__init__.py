"""`ragcompress serve`: an HTTP server that loads the models once and answers from an index.

    ragcompress serve --index idx/ --port 8000
    curl -s localhost:8000/answer -d '{"question": "Who founded Pelville?", "k": 5}'

Needs the ``serve`` extra (FastAPI + uvicorn). batching.py holds the worker that owns the Retriever and
batches concurrent questions; app.py the routes; schemas.py the request bodies; chat.py the OpenAI shapes;
command.py the CLI verb. Nothing is imported here, so the CLI starts fast and without FastAPI installed.
"""

DEFAULT_MAX_BATCH = 8  # most questions answered in one answer_batch call
DEFAULT_WINDOW_S = 0.02  # how long the first question of a batch waits for company
DEFAULT_QUEUE_SIZE = 256  # requests waiting beyond this are refused (503), not queued without end
