"""Visible text of an HTML page with the stdlib parser: no scripts or styles, paragraph breaks kept."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Their content is code or markup, never prose a reader sees.
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript", "svg", "math", "iframe", "object"})
# Elements that start a new paragraph.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "details", "dialog",
        "div", "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "html", "legend", "main", "nav", "ol", "p", "section", "summary", "table",
        "tbody", "tfoot", "thead", "title", "ul",
    }
)  # fmt: skip
# Elements that start a new line inside a paragraph (list items and table rows read as lines).
_LINE_TAGS = frozenset({"br", "dd", "dt", "li", "tr"})
# Table cells: keep neighbouring cells apart.
_CELL_TAGS = frozenset({"td", "th"})
# HTML collapses these; a no-break space (U+00A0) is deliberately not among them.
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


def html_to_text(markup: str) -> tuple[str, str | None]:
    """The page's text (paragraphs separated by blank lines) and its <title>, if any."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    parser.end_block()
    return "\n\n".join(parser.blocks), parser.title


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive already decoded
        self.blocks: list[str] = []
        self.title: str | None = None
        self._pieces: list[str] = []  # the paragraph being built; "\n" marks a line break
        self._skip_depth = 0
        self._pre_depth = 0  # inside <pre> whitespace is content, so it is kept verbatim
        self._title_pieces: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth += 1
        elif self._skip_depth:
            return
        elif tag == "pre":
            if not self._pre_depth:
                self.end_block()
            self._pre_depth += 1
        elif self._pre_depth:
            return
        elif tag in _BLOCK_TAGS:
            self.end_block()
            if tag == "title":
                self._title_pieces = []
        elif tag in _LINE_TAGS:
            self._pieces.append("\n")
        elif tag in _CELL_TAGS:
            self._pieces.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(self._skip_depth - 1, 0)
        elif self._skip_depth:
            return
        elif tag == "pre":
            if self._pre_depth:
                self._pre_depth -= 1
                if not self._pre_depth:
                    self.end_block(verbatim=True)
        elif self._pre_depth:
            return
        elif tag in _BLOCK_TAGS:
            if tag == "title" and self._title_pieces is not None:
                self.title = " ".join("".join(self._title_pieces).split()) or None
                self._title_pieces = None
            self.end_block()
        elif tag in _LINE_TAGS:
            self._pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._title_pieces is not None:
            self._title_pieces.append(data)
        self._pieces.append(data if self._pre_depth else _HTML_SPACE.sub(" ", data))

    def end_block(self, verbatim: bool = False) -> None:
        """Close the current paragraph (if it has any text)."""
        raw = "".join(self._pieces)
        self._pieces = []
        if verbatim:
            text = "\n".join(line.rstrip() for line in raw.strip("\n").split("\n"))
        else:
            lines = (line.strip(" ") for line in raw.split("\n"))
            text = "\n".join(line for line in lines if line)
        if text.strip():
            self.blocks.append(text)
