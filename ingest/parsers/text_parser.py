"""Plain text, and the fallback for anything without a parser: paragraph sections only."""

from __future__ import annotations

from pathlib import PurePosixPath

from kb.ingest.parsers.base import Limits, paragraph_sections, register, split_lines
from kb.types import ParsedFile

__all__ = ["TextParser"]


class TextParser:
    name = "text"
    suffixes = (".txt", ".text", ".rst", ".html", ".htm")
    filenames = ("license", "notice", "readme", "authors", "codeowners")

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return ParsedFile(format=self.name, sections=paragraph_sections(split_lines(text)))


register(TextParser())
