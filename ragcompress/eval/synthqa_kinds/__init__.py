"""The entity kinds of the synthetic QA set, one per module, each with its facts and templates.

Template fields are described in `synthqa_facts`. Every fact has several sentence shapes and several
question phrasings so a model cannot learn where in a passage, or after which words, an answer sits.
"""

from ragcompress.eval.synthqa_facts import KindSpec
from ragcompress.eval.synthqa_kinds.common import CONFUSION_SENTENCES, GENERIC_FILLERS
from ragcompress.eval.synthqa_kinds.company import COMPANY
from ragcompress.eval.synthqa_kinds.mountain import MOUNTAIN
from ragcompress.eval.synthqa_kinds.person import PERSON
from ragcompress.eval.synthqa_kinds.river import RIVER
from ragcompress.eval.synthqa_kinds.ship import SHIP
from ragcompress.eval.synthqa_kinds.town import TOWN

KINDS: tuple[KindSpec, ...] = (PERSON, TOWN, COMPANY, SHIP, RIVER, MOUNTAIN)

__all__ = ["CONFUSION_SENTENCES", "GENERIC_FILLERS", "KINDS"]
