"""The data formats the library reads, below both training and evaluation (both import it, it imports
neither): `documents` (text sources for training and perplexity) and `qa_dataset` (the QA dataset
format: a corpus folder and questions.jsonl).

Kept free of imports so that `ragcompress.data.<module>` loads only what it needs. The corpus builder
and the synthetic-QA generator are tooling, in `ragcompress_tools`.
"""
