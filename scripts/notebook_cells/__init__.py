"""The cell texts of notebooks/02-… to 04-…, one module per notebook (scripts/make_notebooks.py writes
them): data kept as plain strings so that a change reads as a diff."""
