"""Extractive decoding (retrieval/extractive.py): answers restricted to spans of the passages."""

import pytest
import torch
from tiny import EOS, tiny_model, tiny_tokenizer

from ragcompress.retrieval.extractive import PassageSpanConstraint
from ragcompress.retrieval.generation import generate_outputs

NAMES = ["Born in 1877, Thastesern Grihofern\nlived in Oskavel.", "The mill made 4,200 barrels."]


class CharTokenizer:
    """Decodes token i as the i-th piece; encodes by longest piece first (unknown characters: "?")."""

    pieces = ["<eos>", "Th", "astes", "ern", " Gri", "hofern", "ras", "urn", " ", "18", "77", "Osk", ".", "?"]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.pieces[i] for i in ids if not (skip_special_tokens and i == 0))

    def encode(self, text, add_special_tokens=False):
        ids = []
        while text:
            fits = [i for i in range(1, len(self.pieces)) if text.startswith(self.pieces[i])]
            i = max(fits, key=lambda i: len(self.pieces[i])) if fits else len(self.pieces) - 1
            ids.append(i)
            text = text[len(self.pieces[i]) if fits else 1 :]
        return ids


def _constraint(top_n=64, widen=None):
    widen = top_n if widen is None else widen
    return PassageSpanConstraint(
        CharTokenizer(), [NAMES], prompt_width=2, eos_ids=[0], top_n=top_n, widen=widen
    )


def test_spans_start_at_a_word_and_end_only_at_a_word_end():
    c = _constraint()
    assert c.occurs(0, "Thastesern Grihofern", ends=True)
    assert c.occurs(0, "Thastesern  Grihofern", ends=True)  # whitespace is normalised on both sides
    assert c.occurs(0, "Grihofern lived", ends=True)  # across the passage's newline
    assert c.occurs(0, "Thastes", ends=False) and not c.occurs(0, "Thastes", ends=True)
    assert not c.occurs(0, "astesern", ends=False)  # inside a word
    assert c.occurs(0, "1877,", ends=True) and c.occurs(0, "4,200", ends=True)
    assert not c.occurs(0, "Thrasurn", ends=False)
    assert c.occurs(0, "", ends=False) and not c.occurs(0, "", ends=True)
    # whitespace after a word must be whitespace in the passage: it ends the word
    assert c.occurs(0, "Thastesern ", ends=False) and c.occurs(0, "Grihofern\n", ends=False)
    assert not c.occurs(0, "Thastes ", ends=False) and not c.occurs(0, "Thastes\xa0\xa0", ends=False)


def test_whitespace_never_pads_or_breaks_a_word():
    c = _constraint()
    prompt = [5, 5]
    space = 8
    # "Thastes" + " " would end the word inside "Thastesern"; "Thastesern" + " " continues the passage
    assert c.allowed(0, [1, 2], [space, 3]) == [3]
    assert c.allowed(0, [1, 2, 3], [space]) == [space]
    # a second space adds nothing, so it is no step inside a span (no runs of padding)
    assert c.allowed(0, [1, 2, 3, space], [space, 4]) == [4]
    assert c.allowed(0, [], [space]) == []
    # and EOS after a trailing space is judged on the words before it
    assert c.allowed(0, [1, 2, 3, space], [0]) == [0]
    scores = torch.full((1, len(CharTokenizer.pieces)), -5.0)
    scores[0, space] = 3.0
    out = c(torch.tensor([prompt + [1, 2, 3, space]]), scores.clone())
    assert torch.isinf(out[0, space])


def test_each_step_keeps_the_best_token_that_stays_inside_a_passage():
    c = _constraint()
    prompt = [5, 5]
    # the model prefers "ras" ("Thras…", a blurred name) over "astes"; the constraint keeps "astes"
    scores = torch.full((1, len(CharTokenizer.pieces)), -5.0)
    scores[0, 6], scores[0, 2], scores[0, 0] = 3.0, 1.0, 2.0
    out = c(torch.tensor([prompt + [1]]), scores.clone())
    assert out[0].argmax().item() == 2
    assert torch.isinf(out[0, 6]) and torch.isinf(out[0, 0])  # "Th" cannot end an answer either
    assert out[0, 2] == scores[0, 2]  # allowed tokens keep their scores (sampling still works)
    # a complete span may end: after "Thastesern" EOS is allowed, after "Thastes" it is not
    done = c(torch.tensor([prompt + [1, 2, 3]]), scores.clone())
    assert done[0].argmax().item() == 0
    # a finished row is left alone, whatever it holds
    finished = c(torch.tensor([prompt + [6, 0]]), scores.clone())
    assert torch.equal(finished, scores)


def test_a_step_with_no_allowed_candidate_ends_the_span_or_finishes_the_word():
    scores = torch.full((1, len(CharTokenizer.pieces)), -5.0)
    scores[0, 6], scores[0, 7] = 3.0, 2.0  # only "ras" and "urn" are in the top 2
    # "Thastesern" is whole, so it ends there
    out = _constraint(top_n=2)(torch.tensor([[5, 5, 1, 2, 3]]), scores.clone())
    assert out[0].argmax().item() == 0
    # "Thastes" cannot end, and nothing in the top 2 continues it: a wider search finds the best
    # continuation further down the ranking ("ern", ranked 4th; " Gri", 3rd, does not continue it)
    scores[0, 4], scores[0, 3] = 1.0, 0.5
    out = _constraint(top_n=2, widen=4)(torch.tensor([[5, 5, 1, 2]]), scores.clone())
    assert out[0].argmax().item() == 3 and out[0, 3] == scores[0, 3]
    assert torch.isinf(out[0, [0, 4, 6, 7]]).all()
    # when the wider search finds nothing either, the word is finished as the passage spells it
    c = _constraint(top_n=2, widen=3)
    assert c.continuations(0, [1, 2]) == [3]  # "Thastes" → "ern Grihofern…"
    assert c.continuations(0, [1, 2, 3]) == [4]  # "Thastesern" → " Gri…"
    out = c(torch.tensor([[5, 5, 1, 2]]), scores.clone())
    assert out[0].argmax().item() == 3 and torch.isinf(out[0, [0, 4, 6, 7]]).all()
    # only an answer that is no span at all (after an unconstrained step) leaves the step alone
    assert c.continuations(0, [1, 6]) == []
    out = c(torch.tensor([[5, 5, 1, 6]]), scores.clone())
    assert torch.equal(out, scores)
    with pytest.raises(ValueError, match="top_n"):
        _constraint(top_n=0)
    with pytest.raises(ValueError, match="widen"):
        _constraint(top_n=4, widen=2)


def test_extractive_generation_answers_with_spans_of_the_passages():
    torch.manual_seed(0)
    model = tiny_model("llama", summary_length=2).eval()
    tok = tiny_tokenizer()
    # tokens t10..t29: no vocabulary token is a proper prefix of them (t1 and t2 do not exist), and the
    # word-level decoder puts a space between tokens, so a span here is a run of whole tokens
    passages = [["t10 t11 t12 t13 t14", "t15 t16 t17"], ["t20 t21 t22 t23", "t24 t25"]]
    questions = ["t50 t51", "t52 t53"]

    def run(mode, extractive):
        outputs = generate_outputs(
            model, tok, questions, passages, mode=mode, max_new_tokens=4, extractive=extractive
        )
        return [o.text.strip() for o in outputs]

    plain = run("fused", False)
    assert any(not any(a in p for p in group) for a, group in zip(plain, passages)), plain
    for mode in ("fused", "text"):
        for answer, group in zip(run(mode, True), passages):
            assert answer and any(f" {answer} " in f" {p} " for p in group), (mode, answer)
    with pytest.raises(ValueError, match="extractive=True needs the passages"):
        generate_outputs(model, tok, questions, None, mode="none", extractive=True)
    assert EOS == tok.eos_token_id


def test_special_tokens_other_than_eos_never_extend_a_span():
    tok = tiny_tokenizer()
    c = PassageSpanConstraint(tok, [["t10 t11"]], prompt_width=0, eos_ids=[tok.eos_token_id])
    t10 = tok.convert_tokens_to_ids("t10")
    # <pad> and <bos> decode to nothing; "t10" + <pad> would still read "t10"
    assert c.allowed(0, [t10], [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id]) == [tok.eos_token_id]


def test_beams_of_one_question_share_its_passages():
    # generate() repeats each prompt per beam: rows 0, 1 are question 0's beams, rows 2, 3 question 1's
    c = PassageSpanConstraint(CharTokenizer(), [NAMES, ["Oskavel."]], prompt_width=2, eos_ids=[0])
    scores = torch.zeros((4, len(CharTokenizer.pieces)))
    scores[:, 1] = 2.0  # "Th" is best everywhere, but only question 0's passages start a word with it
    scores[:, 11] = 1.0  # "Osk": in both questions' passages
    out = c(torch.tensor([[5, 5]] * 4), scores)
    assert [out[r].argmax().item() for r in range(4)] == [1, 1, 11, 11]
