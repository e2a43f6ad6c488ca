"""Extractive decoding: answers restricted to spans of the retrieved passages' text.

In fused mode the model reads only summary vectors, and an answer it half-remembers comes back blurred
("Thrasurn Griorn" for *Thastesern Grihofern*). The passages' text is at hand all the same (the store
keeps it next to the vectors), and using it to constrain decoding costs no prompt compute. At each step
the constraint keeps only the candidate tokens after which the answer so far is still a span of some
passage:

* the answer text (leading whitespace dropped, runs of whitespace read as one space) must occur in a
  passage, starting at a word boundary; whitespace after a word must be whitespace in the passage too,
  so "Grudaes " cannot close a word that the passage spells "Grudaesei";
* a token must add something: more whitespace after whitespace (or a token that decodes to nothing)
  is not a step inside a span;
* end-of-sequence is allowed once the answer is non-empty and some occurrence also ends at a word
  boundary, so "Thastes" cannot stop inside "Thastesern".

Matching is on decoded text, not token ids, so a span matches however the tokenizer split it inside the
passage (after a space, after a newline, at the start). Only the ``top_n`` highest-scoring tokens of
each step are tried; all other tokens are masked. When none of them continues a span, the answer ends
there if it can end. If it cannot (it stopped inside a word, as "1," of "1,879"), the ``widen``
highest-scoring tokens are tried, and then the first token of the text that follows the answer in the
passages, so that a figure or name is finished as a passage spells it rather than left half-written.
Only if none of those continues a span (which should not happen, since the answer so far is one) is the
step left unconstrained. So the constraint never makes generation fail. It is a logits processor and
works with greedy decoding, sampling and beams.

Use it only where answers are spans of the passages (names, dates, figures, short facts). It
cannot produce an answer that paraphrases or combines passages.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SPAN_MODES = ("fused", "hybrid", "text")  # the modes whose passages an answer can be copied from


def check_extractive(mode: str, extractive: bool) -> None:
    """Refuse ``extractive=True`` for a mode without passages to copy from (one clear line)."""
    if extractive and mode not in SPAN_MODES:
        raise ValueError(
            f"extractive=True works with mode 'fused' or 'text', not {mode!r}; 'hybrid' works too"
        )


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _normal(text: str) -> str:
    """Whitespace runs as one space, none in front; one trailing space kept when ``text`` ends in
    whitespace after some text (the word before it has ended)."""
    core = " ".join(text.split())
    return core + " " if core and text[-1].isspace() else core


class PassageSpanConstraint:
    """A ``transformers`` logits processor: row ``b``'s answer must be a span of ``passages[b]``.

    ``prompt_width`` is the width of the (left-padded) prompt in ``input_ids``; everything after it is
    the answer so far. ``eos_ids`` are the tokens that end an answer. ``top_n`` tokens are tried at each
    step, and ``widen`` (default the larger of 1,024 and ``top_n``) when the answer is stuck inside a word.
    """

    def __init__(
        self,
        tokenizer,
        passages: Sequence[Sequence[str]],
        prompt_width: int,
        eos_ids: Sequence[int],
        top_n: int = 64,
        widen: int | None = None,
    ):
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {top_n}")
        widen = max(top_n, 1024) if widen is None else widen
        if widen < top_n:
            raise ValueError(f"widen must be at least top_n ({top_n}), got {widen}")
        self.tokenizer = tokenizer
        self.passages = [[" ".join(p.split()) for p in row] for row in passages]
        self.prompt_width = prompt_width
        self.eos = set(eos_ids)
        # other special tokens decode to nothing, so they would always "stay inside" a span: never allowed
        self.special = set(getattr(tokenizer, "all_special_ids", ())) - self.eos
        self.top_n = top_n
        self.widen = widen

    def _occurrences(self, row: int, span: str):
        """``(passage, end)`` for each occurrence of the normalised, non-empty ``span`` in row ``row``'s
        passages that starts at a word start."""
        for text in self.passages[row]:
            start = text.find(span)
            while start >= 0:
                if start == 0 or not (_is_word_char(text[start - 1]) and _is_word_char(span[0])):
                    yield text, start + len(span)
                start = text.find(span, start + 1)

    def occurs(self, row: int, span: str, *, ends: bool) -> bool:
        """Whether ``span`` occurs in one of row ``row``'s passages from a word start (and, with
        ``ends``, up to a word end)."""
        span = _normal(span)
        if not span:
            return not ends
        for text, end in self._occurrences(row, span):
            if not ends or end == len(text) or not (_is_word_char(text[end]) and _is_word_char(span[-1])):
                return True
        return False

    def continuations(self, row: int, answer: list[int]) -> list[int]:
        """The first token of the text that follows the answer in each place a passage holds it: how
        the passages themselves would go on (the last resort of a step stuck inside a word)."""
        span = _normal(self._decode(answer))
        tokens = []
        if span:
            for text, end in self._occurrences(row, span):
                rest = text[end : end + 32]
                ids = self.tokenizer.encode(rest, add_special_tokens=False) if rest else []
                if ids and ids[0] not in tokens:
                    tokens.append(ids[0])
        return tokens

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def allowed(self, row: int, answer: list[int], candidates: Sequence[int]) -> list[int]:
        """The candidates after which row ``row``'s answer is still a span (EOS: a complete one)."""
        keep = []
        so_far = self._decode(answer)
        for token in candidates:
            if token in self.eos:
                if so_far.strip() and self.occurs(row, so_far.rstrip(), ends=True):
                    keep.append(token)
            elif token not in self.special:
                longer = self._decode(answer + [token])
                if _normal(longer) != _normal(so_far) and self.occurs(row, longer, ends=False):
                    keep.append(token)
        return keep

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = torch.full_like(scores, float("-inf"))
        top = scores.topk(min(self.top_n, scores.shape[-1]), dim=-1).indices.tolist()
        # generate() repeats each prompt for beams / return sequences: rows row*per .. row*per+per-1
        per = max(1, input_ids.shape[0] // len(self.passages))
        for row, generated in enumerate(input_ids[:, self.prompt_width :].tolist()):
            if any(t in self.eos for t in generated):  # finished: generate() pads it, whatever we say
                out[row] = scores[row]
                continue
            own = row // per  # the question whose passages this row answers from
            keep = self.allowed(own, generated, top[row])
            if not keep:
                keep = self.allowed(own, generated, sorted(self.eos))  # end here if the span is whole
            if not keep and self.widen > self.top_n:  # stuck inside a word: look further down the ranking
                wider = scores[row].topk(min(self.widen, scores.shape[-1])).indices.tolist()
                keep = self.allowed(own, generated, wider[len(top[row]) :])
            if not keep:  # then finish the word as a passage spells it
                keep = self.allowed(own, generated, self.continuations(own, generated))
            if not keep:
                out[row] = scores[row]  # no way to stay inside a passage: leave this step alone
                continue
            index = torch.tensor(keep, device=scores.device)
            out[row, index] = scores[row, index]
        return out
