"""Retrievers over a ragcompress index for the frameworks users already have.

    from ragcompress.integrations.langchain import RagcompressRetriever      # pip install 'ragcompress[langchain]'
    from ragcompress.integrations.llamaindex import RagcompressRetriever     # pip install 'ragcompress[llamaindex]'

Both return the passages ``Retriever.search`` finds, as the framework's own document type, with the
document id, chunk id, character span and retrieval score as metadata. searcher.py holds what they share.
"""
