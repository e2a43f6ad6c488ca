"""Spans worth blanking in a sentence, and their kind: number, year, date, name, code or term.

`find_spans(sentence, ...)` returns non-overlapping `Span`s with offsets into the sentence as written
(newlines kept), so a caller can cut the answer out verbatim and put `____` in its place. Detectors run
in priority order and a later one never takes text an earlier one claimed: marked-up terms
(``x``, `x`, *x*, "x"), dates, code-like strings, years, numbers, then names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

KINDS = ("number", "year", "date", "name", "code", "term")

_MONTHS = "January February March April May June July August September October November December".split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_MONTH = "(?:" + "|".join(_MONTHS) + ")"
_DATE = re.compile(
    rf"\b(?:{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?(?:, \d{{4}})?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}(?:,? \d{{4}})?"
    rf"|{_MONTH},? \d{{4}}"
    r"|\d{4}-\d{2}-\d{2})\b"
)
# Inline markup around a term: rst literals and roles, emphasis (*x*, **x**) and double quotes. The
# Austen texts' _x_ emphasis is left alone: it marks stressed everyday words, not terms. Group 1 is
# the content, which becomes the answer.
_MARKUP = (
    re.compile(r"``([^`\n]{1,40}?)``"),
    re.compile(r"(?<![`\w])`([^`<>\n]{1,40}?)`(?![`\w])_?"),
    re.compile(r"(?<![*\w])\*\*?([^*\s][^*\n]{0,38}?)\*?\*(?![*\w])"),
    re.compile(r'"([^"\n.!?,;]{2,40}?)"'),
    re.compile(r"“([^”\n.!?,;]{2,40}?)”"),
)
_CODE = (
    re.compile(r"(?<![\w.])[A-Za-z_][\w.]*\(\)"),  # function()
    re.compile(r"(?<![^\s(\[`'\"])--[a-z0-9][a-z0-9-]*[a-z0-9](?:=\w+)?(?![\w-])"),  # --option (not a dash)
    re.compile(r"(?<![\w/.~])(?:~|\.{1,2})?/(?:[\w.+-]+/)*[\w.+-]*[A-Za-z][\w.+-]*/?"),  # /a/path
    re.compile(r"(?<![\w/])[\w.-]+(?:/[\w.-]+){2,}/?"),  # relative/path/with/segments
    re.compile(r"(?<![\w/])[\w-]+/[\w-]+\.[A-Za-z]\w{0,5}\b"),  # dir/file.ext
    re.compile(r"\b[A-Za-z_]\w*(?:::\w+)+"),  # a::b
    re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?![\w(])"),  # a.b.c, file.py
    re.compile(r"(?<![\w])\w*[A-Za-z]\w*(?![\w])"),  # identifiers: kept below only if they hold a "_"
)
_YEAR = re.compile(r"(?<![\w.,:/-])(?:1[0-9]{3}|20[0-9]{2})(?![\w.,:/-]?\d)(?!\w)")
_NOT_YEARS = frozenset({"1024", "2048"})  # sizes in the technical docs far more often than years
_NUMBER = re.compile(
    r"(?<![\w.,:/-])(?:0x[0-9a-fA-F]+|\d+(?:[.,]\d+)*(?:%|[KMGT]i?B|[kKMG]Hz|[KMG]\b|ms|us|ns)?)(?![.,]?\d)(?!\w)"
)
_NUMBER_WORDS = (
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million"
).split()
_NUMBER_WORD = re.compile(
    r"\b(?:" + "|".join(_NUMBER_WORDS) + r")(?:-(?:one|two|three|four|five|six|seven|eight|nine))?\b"
)
_CAPITALISED = re.compile(r"[A-Z][a-z]+(?:-[A-Z]?[a-z]+|'[A-Z][a-z]+)*|[A-Z]{2,}[0-9]*")
_ROMAN = re.compile(r"[IVXLCDM]+")
# Capitalised words that are not names whatever the counts say: titles (the name is the word after),
# pronouns, calendar words (dates have their own kind) and headings words of the docs.
_NOT_NAMES = frozenset(
    {"I", "O", "OK", "Mr", "Mrs", "Ms", "Miss", "Sir", "Madam", "Lady", "Lord", "Dr", "St", "God"}
    | {"King", "Queen", "Prince", "Princess", "Duke", "Duchess", "Captain", "Colonel", "Master"}
    | {"Note", "See", "Example", "Examples", "Warning", "Also", "The", "This", "That", "It", "If"}
    | set(_MONTHS)
    | set(_DAYS)
)
_ROLE_BEFORE = re.compile(
    r":(?:py:|c:)?(?:func|meth|class|exc|attr|mod|data|const|obj|type|macro|member|envvar|keyword|option):$"
)
_TITLE_BEFORE = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St)\.$")
_WORD = re.compile(r"\b[A-Za-z]+\b")
_MID_SENTENCE_CAPITAL = re.compile(r"(?<=[a-z,;] )(?:[A-Z][a-z]+|[A-Z]{2,})\b")
_TERM_STOPWORDS = frozenset(
    "a an the he she it they we you i me him her them us his its our their your my this that these "
    "those is was be been are were not no yes and or but so".split()
)


@dataclass(frozen=True)
class Span:
    """`sentence[start:end]` is the answer; `kind` is one of `KINDS`."""

    kind: str
    start: int
    end: int


class WordStats:
    """How often each word is written in lower case, and capitalised in mid-sentence, over a corpus.

    A capitalised word is a name when the corpus writes it capitalised (mid-sentence) at least as often
    as in lower case: "Fairfax" is a name, "The" or "Python" at a sentence start are not the question.
    """

    def __init__(self, texts: Iterable[str] = ()):
        self.lower: Counter[str] = Counter()
        self.capital: Counter[str] = Counter()
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        self.lower.update(w for w in _WORD.findall(text) if w.islower())
        self.capital.update(_MID_SENTENCE_CAPITAL.findall(text))

    def is_name(self, word: str) -> bool:
        if word in _NOT_NAMES or len(word) < 2 or _ROMAN.fullmatch(word):
            return False
        return self.lower[word.lower()] <= self.capital[word]


def _looks_like_code(text: str) -> bool:
    if any(pattern.fullmatch(text) for pattern in _CODE[:-1]):
        return True
    return bool(_CODE[-1].fullmatch(text)) and "_" in text.strip("_")


def _markup_kind(content: str) -> str | None:
    if _looks_like_code(content):
        return "code"
    if _YEAR.fullmatch(content):
        return "year"
    if _NUMBER.fullmatch(content):
        return "number"
    if content.strip().lower() in _TERM_STOPWORDS or len(content.strip()) < 3 or len(content.split()) > 4:
        return None
    if content != content.strip():
        return None
    return "term"


def find_spans(
    sentence: str,
    stats: WordStats | None = None,
    line_starts_capitalised: bool = False,
    code: bool = True,
) -> list[Span]:
    """The blankable spans of `sentence`, in order of position, never overlapping.

    `line_starts_capitalised` (verse) means a capitalised word right after a line break is no name.
    `code=False` (prose) looks for no code-like strings outside markup: there "--and" is a dash and
    "Mr.Knightley" a typo. The first word of the sentence is never a name. Spans never contain a line
    break.
    """
    stats = stats if stats is not None else WordStats()
    taken = [False] * len(sentence)
    spans: list[Span] = []

    def claim(kind: str, start: int, end: int) -> None:
        if start >= end or any(taken[start:end]) or "\n" in sentence[start:end]:
            return
        for i in range(start, end):
            taken[i] = True
        spans.append(Span(kind, start, end))

    def claim_whole(start: int, end: int) -> None:
        for i in range(start, end):
            taken[i] = True

    for pattern in _MARKUP:
        for match in pattern.finditer(sentence):
            if any(taken[match.start() : match.end()]):
                continue
            start = match.start(1)
            role = _ROLE_BEFORE.search(sentence, 0, match.start())
            if role and sentence[start] in "~!":  # :class:`~a.B` shows "B", :keyword:`!for` links nothing
                start += 1
            kind = _markup_kind(sentence[start : match.end(1)])
            if kind == "term" and role:
                kind = "code"  # :func:`len`, :exc:`ValueError`: Sphinx names a Python or C object
            if kind is not None:
                claim(kind, start, match.end(1))
            claim_whole(match.start(), match.end())  # what was not kept is not read again inside
    for match in _DATE.finditer(sentence):
        claim("date", match.start(), match.end())
    for pattern in _CODE if code else ():
        for match in pattern.finditer(sentence):
            if pattern is _CODE[-1] and "_" not in match.group().strip("_"):
                continue
            if pattern is _CODE[6] and all(len(part) <= 1 for part in match.group().split(".")):
                continue  # e.g, i.e
            claim("code", match.start(), match.end())
    for match in _YEAR.finditer(sentence):
        if match.group() not in _NOT_YEARS:
            claim("year", match.start(), match.end())
    for pattern in (_NUMBER, _NUMBER_WORD):
        for match in pattern.finditer(sentence):
            if match.start() > 0:  # a leading number is a list marker more often than a fact
                claim("number", match.start(), match.end())
    _claim_names(sentence, stats, line_starts_capitalised, claim)
    return sorted(spans, key=lambda span: span.start)


def _claim_names(sentence: str, stats: WordStats, line_starts_capitalised: bool, claim) -> None:
    """Runs of up to four capitalised words (single spaces between) whose first and last are names."""
    words = list(_CAPITALISED.finditer(sentence))
    first_word = re.search(r"[A-Za-z0-9]", sentence)
    sentence_start = first_word.start() if first_word else 0
    i = 0
    while i < len(words):
        run = [words[i]]
        while (
            i + len(run) < len(words)
            and len(run) < 4
            and sentence[run[-1].end() : words[i + len(run)].start()] == " "
        ):
            run.append(words[i + len(run)])
        i += len(run)
        while run and not stats.is_name(run[0].group()):
            run.pop(0)
        while run and not stats.is_name(run[-1].group()):
            run.pop()
        if not run:
            continue
        start, end = run[0].start(), run[-1].end()
        before = sentence[:start].rstrip(" \n")
        if start <= sentence_start or not before:
            continue
        if before[-1] in ".!?:\"'“‘(" and not _TITLE_BEFORE.search(before):
            continue  # a sentence or quotation start: capitalised anyway
        if line_starts_capitalised and "\n" in sentence[len(before) : start]:
            continue
        if not (start == 0 or not (sentence[start - 1].isalnum() or sentence[start - 1] in "_-./")):
            continue  # part of a longer token
        if end < len(sentence) and (sentence[end].isalnum() or sentence[end] in "_/("):
            continue
        claim("name", start, end)
