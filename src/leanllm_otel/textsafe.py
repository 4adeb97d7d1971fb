"""Stored text as the CLI and the reports may print it: no terminal or Markdown control gets through.

Every stored field is untrusted: a provider's 400 that echoes the prompt puts the caller's text into
``error_message``, and model names, environments and labels come from applications. Printed raw,
``ESC]0;...BEL`` retitles the window, ``ESC[2J`` clears the screen, OSC 8 plants a link and the 8-bit CSI
(U+009B) does the same without an ESC. So:

- :func:`terminal_safe` shows every C0 control (but tab and newline), DEL, every C1 control and the bidi
  overrides as visible escapes (``\\x1b``, ``\\x9b``, ``\\u202e``); :func:`one_line` escapes tab and newline too
  (table cells);
- :func:`json_safe` does the same inside JSON text with JSON escapes (``\\u009b``), so the line still parses to
  the very same values;
- :func:`markdown_cell` also escapes HTML and ``|``;
- :class:`SafeStream` wraps ``sys.stdout`` / ``sys.stderr`` for the whole of a CLI command, so no output path
  can forget.
"""

from __future__ import annotations

import html
from typing import Any, TextIO

__all__ = ["SafeStream", "json_safe", "markdown_cell", "one_line", "terminal_safe"]

_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
# Bidirectional embeddings, overrides and isolates: they reorder what the terminal shows ("Trojan source").
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]

_BLOCK = {code: f"\\x{code:02x}" for code in _CONTROLS if code not in (0x09, 0x0A)}
_BLOCK.update({code: f"\\u{code:04x}" for code in _BIDI})
_LINE = {**_BLOCK, 0x09: "\\t", 0x0A: "\\n"}
_JSON = {code: f"\\u{code:04x}" for code in [0x7F, *range(0x80, 0xA0), *_BIDI]}  # JSON escapes C0 itself


def terminal_safe(text: str) -> str:
    """``text`` with every control character but tab and newline shown as an escape."""
    return text if text.isprintable() else text.translate(_BLOCK)


def one_line(value: Any) -> str:
    """``value`` as one line of text: every control character, tab and newline included, shown as an escape."""
    text = "" if value is None else str(value)
    return text if text.isprintable() else text.translate(_LINE)


def json_safe(text: str) -> str:
    """JSON ``text`` (``ensure_ascii=False``) with DEL, C1 controls and bidi overrides as ``\\uXXXX`` escapes.

    Valid only for JSON: outside strings JSON has no such characters, inside strings the escape means the same.
    """
    return text if text.isascii() and "\x7f" not in text else text.translate(_JSON)


def markdown_cell(value: Any) -> str:
    """``value`` for a Markdown table cell: one line, HTML escaped, ``|`` escaped."""
    return html.escape(one_line(value), quote=True).replace("|", "\\|")


class SafeStream:
    """A text stream that writes everything through :func:`terminal_safe`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
