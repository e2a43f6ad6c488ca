"""The indexing pipeline's front half: read a corpus into documents, cut documents into token chunks.

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
