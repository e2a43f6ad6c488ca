"""Short-answer QA metrics: exact match and token F1 after SQuAD-style normalisation.

Normalisation lowercases, drops punctuation and the articles a/an/the, and collapses whitespace, so
"The Osla River." and "osla river" are equal. Two additions to the usual recipe, because our answers
are often numbers: a thousands separator is dropped ("12,400" == "12400"), and a decimal point between
digits is kept ("12.5" stays different from "125").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# Marks a chat model may emit to end its turn; anything after one is not part of the answer.
END_OF_TURN_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")
_ANSWER_PREFIX = re.compile(r"^(the\s+)?answer\b\s*(is\b|:|-)\s*:?\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»"
# A placeholder that survives punctuation removal, so a decimal point can be put back afterwards.
_POINT = "\x00"


def _drop_punctuation(text: str) -> str:
    # Unicode categories P* (punctuation) and S* (symbols: $, &, °) carry no answer content; they are
    # deleted, not replaced by a space, as in SQuAD ("o'neill" -> "oneill" on both sides).
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PS")


def normalize_answer(text: str) -> str:
    """Lowercase, drop thousands separators, punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = _THOUSANDS_COMMA.sub("", text)
    text = _DECIMAL_POINT.sub(_POINT, text)
    text = _drop_punctuation(text).replace(_POINT, ".")
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _require_answers(answers: Sequence[str]) -> None:
    if isinstance(answers, str):
        raise TypeError("answers must be a list of strings, not one string")
    if not answers:
        raise ValueError("a question needs at least one reference answer")


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised answer, else 0.0."""
    _require_answers(answers)
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(answer) for answer in answers))


def _token_f1(predicted_tokens: list[str], answer_tokens: list[str]) -> float:
    if not predicted_tokens or not answer_tokens:
        # An empty side scores 1 only against another empty side (e.g. an answer that was all articles).
        return float(predicted_tokens == answer_tokens)
    overlap = sum((Counter(predicted_tokens) & Counter(answer_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted_tokens)
    recall = overlap / len(answer_tokens)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, answers: Sequence[str]) -> float:
    """Token-level F1 between prediction and answer (bag of normalised tokens), the best over answers."""
    _require_answers(answers)
    predicted_tokens = normalize_answer(prediction).split()
    return max(_token_f1(predicted_tokens, normalize_answer(answer).split()) for answer in answers)


def contains_answer(generated_text: str, answers: Sequence[str]) -> float:
    """1.0 if any normalised answer occurs as whole words in the normalised generation, else 0.0.

    Kinder than exact match to a model that answers in a sentence ("It was founded in 1623."), and blind
    to one that lists every candidate; report it next to EM, not instead of it.
    """
    _require_answers(answers)
    padded = f" {normalize_answer(generated_text)} "
    return float(any(f" {normalize_answer(answer)} " in padded for answer in answers if answer.strip()))


def first_answer_span(generated_text: str) -> str:
    """The answer part of a model's generation.

    Leading whitespace is skipped first (models often start with a newline), then the text is cut at
    the first newline or end-of-turn marker; an "Answer:" prefix, surrounding quotes and a trailing
    period are removed.
    """
    text = generated_text.lstrip()
    for marker in END_OF_TURN_MARKERS:
        text = text.split(marker, 1)[0]
    text = text.split("\n", 1)[0]
    text = _ANSWER_PREFIX.sub("", text.strip())
    # Quotes and a final period may nest either way round: "Osk". or "Osk."
    for _ in range(2):
        text = text.strip().rstrip(".").strip(_QUOTES)
    return text.strip()


@dataclass(frozen=True)
class QAScores:
    """Mean exact match and F1 (both in [0, 1]) over `n` questions."""

    em: float
    f1: float
    n: int

    @classmethod
    def aggregate(cls, per_question: Iterable[tuple[float, float]]) -> QAScores:
        """Mean of (em, f1) pairs; zero questions give em = f1 = 0."""
        total_em = total_f1 = 0.0
        n = 0
        for em, f1_score in per_question:
            total_em += em
            total_f1 += f1_score
            n += 1
        return cls(em=total_em / n if n else 0.0, f1=total_f1 / n if n else 0.0, n=n)

    def merge(self, other: QAScores) -> QAScores:
        """Scores over both sets of questions, weighted by their sizes (for sharded evaluation)."""
        n = self.n + other.n
        if n == 0:
            return QAScores(0.0, 0.0, 0)
        return QAScores(
            em=(self.em * self.n + other.em * other.n) / n,
            f1=(self.f1 * self.n + other.f1 * other.n) / n,
            n=n,
        )

    def as_dict(self) -> dict[str, float | int]:
        return {"em": self.em, "f1": self.f1, "n": self.n}


def score_predictions(
    predictions: Sequence[str], answers: Sequence[Sequence[str]], clean: bool = True
) -> QAScores:
    """EM and F1 of predictions against their answer lists; `clean` first applies `first_answer_span`."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} answer lists")
    pairs = []
    for prediction, references in zip(predictions, answers):
        if clean:
            prediction = first_answer_span(prediction)
        pairs.append((exact_match(prediction, references), f1(prediction, references)))
    return QAScores.aggregate(pairs)


_YEAR = re.compile(r"(1\d|20)\d\d")
_NUMBER = re.compile(r"[\d.,]+")
ANSWER_KINDS = ("year", "number", "name", "word")


def answer_kind(answers: Sequence[str]) -> str:
    """What the canonical (first) answer is: a year, another number, a name (capitalised), or a word.

    Compression does not blur every kind alike (digits suffer most), so scores are also reported per kind.
    """
    _require_answers(answers)
    answer = answers[0].strip()
    if _YEAR.fullmatch(answer):
        return "year"
    if _NUMBER.fullmatch(answer) and any(c.isdigit() for c in answer):
        return "number"
    return "name" if answer[:1].isupper() else "word"
