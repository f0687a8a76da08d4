"""Reading a screen's response as a user reads it."""

from __future__ import annotations

import html
import re


def text_of(response) -> str:
    """The page's words with tags dropped and white space collapsed, as a reader sees them."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))
