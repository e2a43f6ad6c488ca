"""Training and evaluation tooling: what builds the data, never what answers a query.

Shipped in the same distribution as `ragcompress` but outside its import path, so that
`import ragcompress` (indexing, retrieval, the CLI) never loads it. It imports the runtime package
(one way: nothing under `ragcompress/` imports it back).

- `corpus`: the offline training corpus builder (readers per source, normalisation, split);
  `python -m scripts.build_corpus` drives it.
- `synthqa`: the synthetic retrieval-QA generator (training style and the held-out "ood" style),
  written in the QA dataset format of `ragcompress.data.qa_dataset`.
- `blankqa`: fill-in-the-blank fact-recall QA from passages of the corpus's train splits, for stage 2
  (`scripts/make_blankqa.py`).
- `random_models`: random-weight stand-ins (a word-level tokenizer, a random BERT embedder) for tests and
  benchmarks that must download nothing.
"""
