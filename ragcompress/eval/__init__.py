"""Evaluation: QA metrics, the synthetic retrieval-QA set, perplexity and retrieval-LM evaluations.

Kept free of imports so that `ragcompress.eval.<module>` loads only what it needs.
"""
