"""Invented names for the synthetic QA set.

Every name is built from random syllables so the base LM cannot know any fact about it. Two guarantees:

- **unique within a dataset**: every generated word is used once, so a surname, a town or a ship names
  exactly one thing and a question about it has exactly one gold document;
- **disjoint across splits**: a word belongs to the split its stable hash falls into, so train and test
  can never share a name, whatever seeds they were generated with.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

# Share of the 256 hash buckets per split. Train gets most of the name space because it is the largest
# split; 32 buckets (1/8 of all words) still leave millions of words for test.
SPLIT_BUCKETS: dict[str, range] = {
    "train": range(0, 192),
    "dev": range(192, 224),
    "test": range(224, 256),
}

_ONSETS = (
    "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p",
    "r", "s", "sk", "st", "t", "th", "tr", "v", "z", "",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ae", "ei", "ou", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "k", "nd", "rn", "th", "sk", "v")
# Three consonants or three vowels in a row read as a typo rather than a name.
_LETTER_RUN = re.compile(r"[^aeiouy]{3,}|[aeiouy]{3,}")

# Frequent English words and well-known names the syllable generator can also produce ("those",
# "river", "paris"): a name must not be one, or a town called River would read as a typo and the LM
# would bring priors about it. Taken as the 800 most frequent such entries of a BERT word-piece vocab.
_COMMON_WORDS = frozenset(
    """
aaron above abraham abuse adrian again agree alaska alberta album alien alive allen allies alone
amanda anderson angel angeles anger animal anime annie annual another areas arena argue arkansas
armies armor around arrival arrive arrives asian aside assume austin author baker barbara barely
baron barrel barry bases basin basis beaten bedroom before began begin begun behind belgian belgium
belly beneath bengal berlin beside besides billion billy bodies bones bonus border boston bother
bound boundary brain brazil break breath breathe brian brigade brisbane bristol britain broke broken
bronze brooklyn brother bryan buses daily dakota dallas damage danger dangerous daniel danny dates
davis death debate deeper defend defender defense degree degrees delay delhi deliver della delta
demand demon dennis density denver deputy derby derek desire despite detail devil devon diamond
diego diesel digital dinner dirty disaster disney disorder dispute diverse divine dollar domain
dozen dragon drake drama dream drive driven driver drove drummer duties dylan dynasty early eastern
editor either elder eleven elite ellis embassy emily emperor empire enemy energy engage engine
engines enormous ensure enter entire error estate estates ethan every fairly faith fallen false
family famous fantasy farmer fashion faster father favor favour federal female females ferry
festival figure figures files final finally finger finland fires fisher forever formal formally
former formerly formula fortune forty forum foster found founder fourteen fully funeral funny future
gabriel gallery games garage garden garrison gates gather gauge gender general genre genus george
german germany given gives golden gonna gordon gospel governor grade grades graham grammar grave
greater greek green gregory ground grove guide guilty guitar hamilton hammer harbor harbour harder
harper harris harrison harry harvey haven heaven heavy helen hello henry heroes hindu history holes
holland homes honey honor honour hopes horror horse horses hospital hotel house houses houston human
humor hungary hunter husband ideal ideas illegal image images india indian indoor inner inside
intense inter internal involves ireland islam island israel israeli issue issues italy kansas karen
keith kelly kennedy kenya kevin killer kisses korea korean label labor labour ladies lakes lanka
large largely larger larry later latin latino laura leader learn leather leave leaves lebanon legal
legend legion lesser level liberal liberty library likely likes linda linear lines listen lives
logan london longer loose losses lovely lover loves madison maine mainland mainly makes males manage
manager manner manor mansion manual manuel marathon margin maria marie marine mario marry martial
martin marvel maryland mason massive master maybe medal media median medium melbourne melody member
memory mental mention merely merger message messages metal meter metre metres metro miami miguel
milan miles miller million mines minimum minister minor minute minutes mirror missile mission
missouri mistake mobile model modern monday money monitor montana moore moral morgan morris mother
motion motor mountain mouse mouth moves movie movies multi murder murray museum muslim mutual
mystery namely names nathan nation native natural nature naval nearby nearly nebraska neither nelson
nepal nervous neutral nevada never nobody noise normal normally norman notes novel november number
numerous nurse obama older oliver online opera orange order oregon organ origin other outer pages
painter pakistan panama panel paper parade parallel paris parker partial parties party passage
passenger passes passion patrol pause pedro penalty perry persian person personal personnel peter
piano pierre pirates pistol poetry poland popular porter portion portugal poverty puerto pulse
purpose purposes purse pursue radar radio raise rally random range ranges rarely rates rather ratio
raymond reader ready really reason rebel refer regime region register regular remain remember remote
removal remove repair reporter reserve reserves respond response retail return reveal revenge
reverse revival rider riley rival river robin robinson roger roland roles roman round route routes
ruler rules runner rural russia russian safety sales samuel sandy santa saudi season senate senator
senior sense serbia serbian serial serie series serve server serves session seven several severe
sides siege sierra silver similar simon singer sister sites sofia solar soldier sorry sound south
southern stadium stage stages stake stakes stanley stare state states station statue status steady
steam steel steve steven stolen stone stones storage store stores stories story studies studio
studios study style styles sugar suite sullivan sultan summer sunday super surely surgery surrender
survey survival survive susan symbol syria system taken takes tales tamil taste taylor teeth tender
tennis tension tenure terminal terminus terror terry thailand theater theatre their theme themes
themselves theory therapy there thereby these thirteen thirty thomas those thousand thunder tiger
timber times tissue today together tokyo tommy tongue toronto torture total totally trade trail
train travel treaty trees trevor trial tribe tribes tribute tries trinity truly tunnel turkey turner
tyler types under union unity unlike until urban usage useful usual valley value values vampire
vampires vegas venture venue verse version versus vessel veteran video videos vienna villa village
villages violin virgin virtual virus vision visual volume volumes votes zealand
""".split()
)


def split_of(word: str) -> str:
    """The split a word belongs to, from a hash that is stable across Python runs and platforms."""
    bucket = hashlib.blake2b(word.lower().encode("utf-8"), digest_size=1).digest()[0]
    for split, buckets in SPLIT_BUCKETS.items():
        if bucket in buckets:
            return split
    raise AssertionError("the split buckets cover 0..255")


@dataclass(frozen=True)
class EntityName:
    """How a named thing is written and which answers name it."""

    full: str  # as written mid-sentence: "Tarvel Osk", "the Halvig", "Mount Breska"
    short: str  # for later mentions in the same text: "Osk", "the Halvig", "Mount Breska"
    bare: str  # the invented word alone, unique in the dataset: "Osk", "Halvig", "Breska"
    answers: tuple[str, ...]  # acceptable answers, the canonical one first

    def possessive(self, short: bool = False) -> str:
        name = self.short if short else self.full
        return name + ("'" if name.endswith("s") else "'s")


class NamePool:
    """Hands out fresh invented words of one split, never the same word twice."""

    def __init__(self, split: str, rng: random.Random) -> None:
        if split not in SPLIT_BUCKETS:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_BUCKETS)}")
        self.split = split
        self.rng = rng
        self.used: set[str] = set()
        # Given names may repeat (two people called Tarvel is realistic); surnames may not, which keeps
        # every person's full name and surname unique.
        self.given_names = [self.word() for _ in range(48)]

    def word(self) -> str:
        for _ in range(100_000):
            syllables = [self._syllable(last=i == 1) for i in range(2)]
            if self.rng.random() < 0.3:
                syllables.insert(1, self._syllable(last=False))
            word = "".join(syllables)
            if (
                5 <= len(word) <= 10
                and not _LETTER_RUN.search(word)
                and word not in self.used
                and word not in _COMMON_WORDS
                and split_of(word) == self.split
            ):
                self.used.add(word)
                return word.capitalize()
        raise RuntimeError("name space exhausted; generate fewer entities per dataset")

    def _syllable(self, last: bool) -> str:
        coda = self.rng.choice(_CODAS) if last or self.rng.random() < 0.3 else ""
        return self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + coda

    # --- names of things -------------------------------------------------------------------------

    def person(self) -> EntityName:
        given, surname = self.rng.choice(self.given_names), self.word()
        full = f"{given} {surname}"
        return EntityName(full=full, short=surname, bare=surname, answers=(full, surname))

    def town(self) -> EntityName:
        word = self.word()
        return EntityName(full=word, short=word, bare=word, answers=(word,))

    def company(self) -> EntityName:
        word = self.word()
        suffix = self.rng.choice(("Works", "Industries", "& Sons", "Instruments", "Mills", "Trading Company"))
        full = f"{word} {suffix}"
        return EntityName(full=full, short=full, bare=word, answers=(full, word))

    def ship(self) -> EntityName:
        word = self.word()
        # "the Halvig": normalisation drops the article, so "Halvig" alone is the answer.
        return EntityName(full=f"the {word}", short=f"the {word}", bare=word, answers=(word,))

    def river(self) -> EntityName:
        word = self.word()
        return EntityName(
            full=f"the {word} River", short=f"the {word}", bare=word, answers=(f"{word} River", word)
        )

    def mountain(self) -> EntityName:
        word = self.word()
        full = f"Mount {word}"
        return EntityName(full=full, short=full, bare=word, answers=(full, word))

    def place(self, pattern: str) -> EntityName:
        """A named place that is not an entity of its own, e.g. pattern "{} Province", "Lake {}"."""
        word = self.word()
        full = pattern.format(word)
        answers = (full.removeprefix("the "), word) if full != word else (word,)
        return EntityName(full=full, short=full, bare=word, answers=answers)
