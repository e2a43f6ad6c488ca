"""The synthetic retrieval-QA generator: `generate(split, n_entities, seed, style)` → a QA dataset.

`generator` builds the training style from `kinds/` (facts in `facts`, invented names in `names`);
`ood` builds the held-out out-of-distribution style from `ood_parts`, `ood_science` and `ood_culture`.
Write the result with `ragcompress.data.qa_dataset.write`.
"""

from ragcompress_tools.synthqa.generator import STYLES, generate

__all__ = ["STYLES", "generate"]
