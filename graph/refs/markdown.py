"""Markdown links and images to local files, and their ``#anchors`` (a heading's GitHub slug or
an HTML ``name``/``id``), from the parser's ``links[i]`` and ``headings[i]`` records."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from urllib.parse import unquote

from kb.catalogue import Catalogue
from kb.graph.refs.corpus import Corpus
from kb.graph.refs.model import Reference, ReferenceSink
from kb.graph.refs.paths import SCHEME
from kb.markdown import heading_anchors, html_anchors

__all__ = ["extract_markdown_links", "anchors_by_file", "loose"]


def loose(anchor: str) -> str:
    """An anchor compared loosely: letters and digits only (renderers differ on emoji, '/', '&')."""
    return "".join(c for c in anchor.lower() if c.isalnum())


def anchors_by_file(catalogue: Catalogue) -> dict[str, set[str]]:
    """Markdown file -> the anchors it defines, compared :func:`loose`-ly: heading slugs as GitHub
    makes them, and HTML ``name``/``id`` attributes in headings and anywhere in the text."""
    titles: dict[str, list[str]] = defaultdict(list)
    for path, title in catalogue.query(
        """SELECT r.path, r.value FROM records r JOIN files f ON f.path = r.path
               WHERE f.format = 'markdown' AND starts_with(r.key_path, 'headings[')
               ORDER BY r.path, r.line"""
    ):
        titles[path].append(title or "")
    anchors: dict[str, set[str]] = defaultdict(set)
    for path, ts in titles.items():
        anchors[path].update(loose(a) for a in heading_anchors(ts))
        for t in ts:
            anchors[path].update(loose(name) for name in html_anchors(t))
    for path, text in catalogue.query(
        """SELECT s.path, s.text FROM sections s JOIN files f ON f.path = s.path
               WHERE f.format = 'markdown' AND (contains(s.text, 'name=') OR contains(s.text, 'id='))"""
    ):
        anchors[path].update(loose(name) for name in html_anchors(text or ""))
    return anchors


def extract_markdown_links(catalogue: Catalogue, corpus: Corpus) -> list[Reference]:
    """Every local link and image in the tree's Markdown files, with its anchor checked."""
    rows = catalogue.query(
        """SELECT r.path, r.key_path, r.value, r.line FROM records r JOIN files f ON f.path = r.path
           WHERE f.format = 'markdown' AND starts_with(r.key_path, 'links[') AND r.value_type = 'str'
           ORDER BY r.path, r.line"""
    )
    links = _LinkChecker(corpus, anchors_by_file(catalogue))
    for path, kp, value, line in rows:
        links.link(path, kp, value.strip(), line)
    return links.out.references


class _LinkChecker:
    def __init__(self, corpus: Corpus, anchors: dict[str, set[str]]) -> None:
        self.corpus = corpus
        self.anchors = anchors
        self.out = ReferenceSink()

    def link(self, path: str, kp: str, target: str, line: int) -> None:
        if target.startswith("<") and target.endswith(">"):
            target = target[1:-1]
        if not target or target.startswith(("//", "{{", "{%", "$")) or SCHEME.match(target) or "[REDACTED:" in target:
            return
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        resolved: str | None
        if file_part == "":
            resolved = path
        elif file_part.startswith("/"):
            rel = file_part.lstrip("/")
            if "." not in posixpath.basename(rel.rstrip("/")):
                # a site route (/reference/cli/), as documentation generators use: not a file
                self.out.add(
                    path,
                    0,
                    line,
                    kp,
                    "markdown-link",
                    target,
                    None,
                    "external",
                    "error",
                    "a site-absolute route, not a file",
                )
                return
            resolved = None
            d = posixpath.dirname(path)
            tried = []
            while True:  # the repository root may be any ancestor folder
                c = posixpath.normpath(posixpath.join(d, rel))
                tried.append(c)
                if self.corpus.exists(c):
                    resolved = c
                    break
                if d == "":
                    break
                d = posixpath.dirname(d)
            if resolved is None:
                self.out.add(
                    path,
                    0,
                    line,
                    kp,
                    "markdown-link",
                    rel,
                    None,
                    "broken",
                    "error",
                    f"link target '{target}' does not exist",
                )
                return
        else:
            if self.corpus.escapes_root(path, file_part):
                self.out.add(
                    path, 0, line, kp, "markdown-link", target, None, "external", "error", "outside the corpus root"
                )
                return
            resolved = self.corpus.resolve(path, file_part, root_relative=False)
            if resolved is None:
                guess = posixpath.normpath(posixpath.join(posixpath.dirname(path), file_part))
                self.out.add(
                    path,
                    0,
                    line,
                    kp,
                    "markdown-link",
                    guess,
                    None,
                    "broken",
                    "error",
                    f"link target '{file_part}' does not exist (looked for {guess})",
                )
                return
        if not anchor or self.corpus.formats.get(resolved) != "markdown" or re.match(r"^L\d+", anchor):
            self.out.add(path, 0, line, kp, "markdown-link", target, resolved, "ok")
            return
        full = f"{resolved}#{anchor}"
        have = self.anchors.get(resolved, set())
        if loose(unquote(anchor)) in have:
            self.out.add(path, 0, line, kp, "markdown-link", target, full, "ok")
        else:
            self.out.add(
                path,
                0,
                line,
                kp,
                "markdown-link",
                full,
                None,
                "broken",
                "error",
                f"{resolved} has no heading for '#{anchor}'",
            )
