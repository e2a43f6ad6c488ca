"""The ``index`` verb, top to bottom; its files in the order a run uses them:

    pipeline.py   index_corpus(): the whole run, start to end (``ragcompress index`` calls it)
    walk.py       list the corpus's files (links, odd names)      encoding.py, html_text.py: decode them
    readers.py    read them into Documents, with every skipped file and its reason
    uptodate.py   a re-run with nothing to do stops here, before any model is loaded
    chunker.py    cut each Document into token chunks
    engines/      embed and compress chunks: in-process (local) or on Ray actors
    write.py      commit groups of documents to the store (ragcompress.store.Store), resumably
    report.py     the IndexReport a run returns, and the CLI's summary of it
    progress.py   progress bars

The front half is importable on its own (``indexing.pipeline`` loads the models' code too):

    result = read_corpus("corpus/")          # ReadResult: .documents, .skipped, .summary()
    chunks = chunk_documents(result.documents, tokenizer, chunk_tokens=512, overlap=64)
"""

from indexing.chunker import Chunk, chunk_document, chunk_documents, validate_chunking
from indexing.readers import CorpusError, Document, ReadResult, Skipped, read_corpus, unescape_name

__all__ = [
    "Chunk",
    "CorpusError",
    "Document",
    "ReadResult",
    "Skipped",
    "chunk_document",
    "chunk_documents",
    "read_corpus",
    "unescape_name",
    "validate_chunking",
]
