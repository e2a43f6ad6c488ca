"""Vocabularies and sentences shared by the entity kinds of the synthetic QA set."""

COLOURS = (
    "crimson", "ochre", "teal", "violet", "amber", "indigo", "scarlet",
    "olive", "turquoise", "maroon", "saffron", "slate grey", "cobalt blue",
)  # fmt: skip
PROFESSIONS = (
    "clockmaker", "cartographer", "bookbinder", "glassblower", "surveyor", "violinist", "botanist",
    "lighthouse keeper", "architect", "printer", "beekeeper", "chemist", "shipwright", "weaver",
    "astronomer", "stonemason", "translator", "pharmacist", "locksmith", "painter",
)  # fmt: skip
INDUSTRIES = (
    "salt mining", "shipbuilding", "wool weaving", "paper milling", "glassmaking", "tanning",
    "brewing", "timber", "pottery", "lace making", "copper smelting", "cheesemaking",
)  # fmt: skip
PRODUCTS = (
    "bicycles", "typewriters", "ceramic tiles", "pocket watches", "fishing nets", "stained glass",
    "pianos", "barometers", "railway lamps", "sewing machines", "wool blankets", "telescopes",
    "copper kettles", "rope",
)  # fmt: skip

# Sentences any kind may use to pad a document; they carry no fact.
GENERIC_FILLERS = (
    "Some details of this account remain disputed.",
    "Much of what is known comes from a single surviving ledger.",
    "Local historians have written about this at some length.",
    "Older sources give slightly different versions of events.",
    "The records were partly damaged in a fire and later restored.",
    "A short pamphlet on the subject can be found in the regional library.",
    "Not every account agrees on the order in which these things happened.",
    "Photographs from the period are rare and mostly undated.",
    "A local newspaper once ran a series of articles on the subject.",
    "Researchers continue to find new material in private papers.",
    "The surviving accounts are brief but broadly consistent.",
)

# Sentences that name another entity of the same group, so its document is a confusable distractor:
# it mentions the name but states none of that entity's facts. {O} is the other entity's full name.
CONFUSION_SENTENCES = (
    "{s} is sometimes confused with {O}.",
    "{s} should not be confused with {O}.",
    "Older guides often mix up {n} and {O}.",
)
