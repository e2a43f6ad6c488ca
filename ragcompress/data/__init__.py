"""Training data: the offline corpus readers and their deterministic split."""

from ragcompress.data.corpus import SOURCES, SPLITS, Document, read_source, split_documents

__all__ = ["SOURCES", "SPLITS", "Document", "read_source", "split_documents"]
