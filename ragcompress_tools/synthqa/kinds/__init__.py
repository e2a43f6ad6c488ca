"""The entity kinds of the synthetic QA set, one per module, each with its facts and templates.

Template fields are described in `facts`. Every fact has several sentence shapes and several
question phrasings so a model cannot learn where in a passage, or after which words, an answer sits.
"""

from ragcompress_tools.synthqa.facts import KindSpec
from ragcompress_tools.synthqa.kinds.common import CONFUSION_SENTENCES, GENERIC_FILLERS
from ragcompress_tools.synthqa.kinds.company import COMPANY
from ragcompress_tools.synthqa.kinds.mountain import MOUNTAIN
from ragcompress_tools.synthqa.kinds.person import PERSON
from ragcompress_tools.synthqa.kinds.river import RIVER
from ragcompress_tools.synthqa.kinds.ship import SHIP
from ragcompress_tools.synthqa.kinds.town import TOWN

KINDS: tuple[KindSpec, ...] = (PERSON, TOWN, COMPANY, SHIP, RIVER, MOUNTAIN)

__all__ = ["CONFUSION_SENTENCES", "GENERIC_FILLERS", "KINDS"]
