"""Markdown structure through markdown-it-py: headings, link targets and anchors. The only module
that imports ``markdown_it`` and ``mdit_py_plugins``.

Ingest's Markdown parser takes headings and links from :func:`outline`; graph checks a link's
``#anchor`` against :func:`heading_anchors` (GitHub's slugs, by the anchors plugin's rules) and
:func:`html_anchors`. The parser is CommonMark; a table row reads as a paragraph, which finds its
links all the same. Link targets are kept as written (escapes decoded, not percent-encoded), and
``javascript:``/``file:`` targets are kept too: they are data here, never rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.rules_inline import image, link
from markdown_it.rules_inline.state_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.anchors.index import slugify as _github_slug
from mdit_py_plugins.anchors.index import unique_slug

__all__ = ["Heading", "Outline", "outline", "heading_anchors", "html_anchors"]

_HTML_ANCHOR = re.compile(r"""(?:<a\s[^>]*?(?:name|id)|\sid)\s*=\s*["']([^"']+)["']""")


@dataclass(slots=True)
class Heading:
    line: int
    level: int
    title: str


@dataclass(slots=True)
class Outline:
    """A document's headings and link targets (inline links, images, ``[label]: target``
    definitions), each with its 1-based line, in document order."""

    headings: list[Heading] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)


def _keep(url: str) -> str:
    return url


def _allow(url: str) -> bool:
    return True


def _with_offset(rule: Callable[[StateInline, bool], bool], kind: str) -> Callable[[StateInline, bool], bool]:
    """``rule`` (link or image), noting on the token it opens how many lines into the inline
    text it starts (``meta["line"]``): markdown-it keeps line numbers for blocks only."""

    def wrapped(state: StateInline, silent: bool) -> bool:
        start, first = state.pos, len(state.tokens)
        ok = rule(state, silent)
        if ok and not silent:
            for tok in state.tokens[first:]:
                if tok.type == kind:
                    tok.meta["line"] = state.src.count("\n", 0, start)
                    break
        return ok

    return wrapped


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"inline_definitions": True})
    md.normalizeLink = _keep  # type: ignore[method-assign]
    md.validateLink = _allow  # type: ignore[method-assign]
    md.disable(["inline", "emphasis", "entity", "balance_pairs", "fragments_join"])
    md.inline.ruler.at("link", _with_offset(link, "link_open"))
    md.inline.ruler.at("image", _with_offset(image, "image"))
    return md


_MD = _parser()
_TITLES = MarkdownIt("commonmark")
_PLAIN = re.compile(r"[^\\`*_\[\]<>&!~]*")  # no inline markup: a title that is its own text


def _inline(md: MarkdownIt, tok: Token) -> list[Token]:
    """The inline tokens of a block's text. Reference-style links (``[text][label]``) stay text:
    the definitions are recorded where they are written."""
    children: list[Token] = []
    md.inline.parse(tok.content, md, {}, children)
    return children


def outline(text: str, first_line: int = 1) -> Outline:
    """Headings and link targets of Markdown ``text`` whose first line is ``first_line``.

    Fenced and indented code, code spans, HTML blocks and autolinks hold no links; a heading may sit
    in a list or a block quote; a setext heading's title is its lines joined by a space.
    """
    src = text.replace("\r\n", "\n").replace("\r", " ")
    out = Outline()
    tokens = _MD.parse(src)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            title = " ".join(ln.strip() for ln in tokens[i + 1].content.split("\n"))
            out.headings.append(Heading(tok.map[0] + first_line, int(tok.tag[1]), title))
        elif tok.type == "definition" and tok.map:
            out.links.append((tok.meta["url"], tok.map[0] + first_line))
        elif tok.type == "inline" and tok.map and "](" in tok.content:
            base = tok.map[0] + first_line
            for child in _inline(_MD, tok):
                if child.type == "link_open" and child.markup != "autolink":
                    out.links.append((str(child.attrGet("href") or ""), base + child.meta.get("line", 0)))
                elif child.type == "image":
                    out.links.append((str(child.attrGet("src") or ""), base + child.meta.get("line", 0)))
    return out


def heading_anchors(titles: Iterable[str]) -> list[str]:
    """The anchors GitHub gives headings with these titles, in order (``Setup & Install`` ->
    ``setup--install``; a repeated title gets ``-1``, ``-2``, ...), as the anchors plugin makes
    them: its slug and de-duplication, over the heading's text and code spans."""
    seen: set[str] = set()
    return [unique_slug(_github_slug(_title_text(t)), seen) for t in titles]


def _title_text(title: str) -> str:
    title = " ".join(title.split("\n"))
    if _PLAIN.fullmatch(title):
        return title
    tokens = _TITLES.parseInline(title)
    children = tokens[0].children or [] if tokens else []
    return "".join(c.content for c in children if c.type in ("text", "code_inline"))


def html_anchors(text: str) -> list[str]:
    """``name``/``id`` attributes of HTML (``<a name="x">``, ``<h2 id="y">``) in Markdown ``text``;
    HTML inside code is not HTML."""
    out: list[str] = []
    if "<" not in text or not _HTML_ANCHOR.search(text):
        return out  # no HTML attribute to find: skip the parse
    for tok in _MD.parse(text.replace("\r\n", "\n")):
        if tok.type == "html_block":
            out += _HTML_ANCHOR.findall(tok.content)
        elif tok.type == "inline" and "<" in tok.content:
            for child in _inline(_MD, tok):
                if child.type == "html_inline":
                    out += _HTML_ANCHOR.findall(child.content)
    return out
