"""How a question (and optionally passages as text) becomes prompt tokens.

One place, so that stage-2 training, evaluation and the Retriever all build the same prompt. For an
instruction-tuned tokenizer (one with a chat template) the question goes into a user turn; otherwise a
plain ``Question: ... Answer:`` layout is used. Summary vectors, when used, sit in front of all of it.
"""

from __future__ import annotations

SYSTEM_PROMPT = "Answer the question with a short phrase. Use the given passages."


def question_prompt(
    tokenizer, question: str, passages_text: str | None = None, system: str | None = SYSTEM_PROMPT
) -> str:
    """The prompt text that precedes the answer."""
    content = (
        question.strip()
        if passages_text is None
        else f"{passages_text.strip()}\n\nQuestion: {question.strip()}"
    )
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": content}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix = f"{system}\n\n" if system else ""
    return f"{prefix}{content if passages_text else 'Question: ' + question.strip()}\nAnswer:"


def question_prompt_ids(
    tokenizer, question: str, passages_text: str | None = None, system: str | None = SYSTEM_PROMPT
) -> list[int]:
    text = question_prompt(tokenizer, question, passages_text, system)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def answer_ids(tokenizer, answer: str) -> list[int]:
    """Target tokens of an answer: the answer, then the end-of-turn token so generation stops."""
    leading = "" if getattr(tokenizer, "chat_template", None) else " "
    ids = tokenizer(leading + answer.strip(), add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id]


def join_passages(passages: list[str]) -> str:
    """Passages as plain text, in the given order (least → most relevant), for text-mode prompts."""
    return "\n\n".join(f"Passage {i + 1}: {p.strip()}" for i, p in enumerate(passages))
