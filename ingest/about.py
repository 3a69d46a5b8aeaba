"""What a folder says it is, for the context line of the files in it that say nothing themselves.

A file whose own document has no top-level title or description (:func:`kb.ingest.chunk.file_about`)
takes its folder's *about* instead: a chart's ``values.yaml`` and its ``templates/`` carry the
chart's ``name`` and ``description``, a service's configs the first heading and sentence of its
README. Measured (issue 21): file MRR@10 on held-out questions +0.04.

* A folder's about is its ``Chart.yaml`` ``name`` and ``description`` (:func:`chart_about`); else
  its ``README.md`` (else ``README``): the first two headings and the first sentence of the first
  paragraph, cleaned of images, links, HTML, URLs and Markdown marks (:func:`readme_about`). At
  most :data:`ABOUT_WORDS` words.
* A file takes the about of its own folder, else of the folder above it (:func:`about_for`); a
  README itself takes none.

Computed by the ingest writer from the walked entries before parsing (:func:`folder_abouts`): only
the ``Chart.yaml`` and README files are read, within the file size cap, YAML through the parsers'
safe loader (aliases counted, no constructor run).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from kb.ingest.parsers.base import Limits, strip_bom
from kb.ingest.parsers.yaml_parser import load_yaml
from kb.ingest.walk import WalkEntry

__all__ = ["ABOUT_WORDS", "readme_about", "chart_about", "folder_abouts", "about_for", "takes_folder_about"]

ABOUT_WORDS = 16
README_CHARS = 16_000
"""A README is read up to this many characters: its first heading and paragraph are near the top."""
_README_NAMES = ("readme.md", "readme")
_LIMITS = Limits(max_records=10_000, max_depth=50)

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HTML = re.compile(r"<[^>]+>")
_URL = re.compile(r"https?://\S+")
_MARKS = re.compile(r"[`*_#>|]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def _clean(s: str) -> str:
    s = _IMAGE.sub(" ", s)
    s = _LINK.sub(r"\1", s)
    s = _HTML.sub(" ", s)
    s = _URL.sub(" ", s)
    s = _MARKS.sub(" ", s)
    return " ".join(s.split())


def _cut(about: str) -> str:
    return " ".join(about.split()[:ABOUT_WORDS]).replace("|", "/")


def readme_about(text: str) -> str:
    """A README's first (at most two) headings and the first sentence of its first paragraph.

    Code fences are skipped; so are, before the paragraph starts, tables, HTML, badges, list
    items, rules and lines ending in a colon (an intro to a list)."""
    heads: list[str] = []
    para: list[str] = []
    fence = False
    for ln in strip_bom(text[:README_CHARS]).split("\n"):
        s = ln.strip()
        if s.startswith(("```", "~~~")):
            fence = not fence
            continue
        if fence:
            continue
        if s.startswith("#"):
            if para:
                break
            if len(heads) < 2:
                heads.append(_clean(s.lstrip("#")))
            continue
        if not s:
            if para:
                break
            continue
        if not para and (s.startswith(("|", "<", "[!", "![", "-", "*", "=")) or s.endswith(":")):
            continue
        para.append(s)
    sentence = _SENTENCE_END.split(_clean(" ".join(para)), maxsplit=1)[0] if para else ""
    return _cut(" ".join(heads) + " " + sentence)


def chart_about(text: str) -> str:
    """A ``Chart.yaml``'s ``name`` and ``description``; ``""`` when it is not one YAML mapping."""
    result = load_yaml(strip_bom(text), _LIMITS)
    if result.failed or len(result.documents) != 1 or not isinstance(result.documents[0], dict):
        return ""
    doc = result.documents[0]
    parts = [doc.get(k) for k in ("name", "description")]
    return _cut(_clean(" ".join("" if p is None else str(p) for p in parts)))


def _read(entry: WalkEntry, max_size: int, chars: int | None = None) -> str | None:
    if entry.size > max_size:
        return None
    try:
        with open(entry.abs, "rb") as fh:
            data = fh.read(min(entry.size, max_size) + 1 if chars is None else min(max_size, 4 * chars))
    except OSError:
        return None
    if b"\x00" in data[:8192] or (chars is None and len(data) > max_size):
        return None
    text = data.decode("utf-8", errors="replace")
    return text if chars is None else text[:chars]


def folder_abouts(entries: Iterable[WalkEntry], max_size: int = 10 * 1024 * 1024) -> dict[str, str]:
    """Folder (relative, ``""`` for the root) -> what it says it is, for the folders that say."""
    charts: dict[str, WalkEntry] = {}
    readmes: dict[str, dict[str, WalkEntry]] = {}
    for e in entries:
        p = PurePosixPath(e.rel)
        folder = "" if str(p.parent) == "." else str(p.parent)
        name = p.name.lower()
        if name == "chart.yaml":
            charts[folder] = e
        elif name in _README_NAMES:
            readmes.setdefault(folder, {})[name] = e
    out: dict[str, str] = {}
    for folder in sorted(charts.keys() | readmes.keys()):
        about = ""
        if folder in charts:
            text = _read(charts[folder], max_size)
            about = chart_about(text) if text else ""
        if not about and folder in readmes:
            entry = next(readmes[folder][n] for n in _README_NAMES if n in readmes[folder])
            text = _read(entry, max_size, README_CHARS)
            about = readme_about(text) if text else ""
        if about:
            out[folder] = about
    return out


def takes_folder_about(path: str) -> bool:
    """Whether a file may take its folder's about: every file but a README."""
    return not PurePosixPath(path).name.lower().startswith("readme")


def about_for(path: str, abouts: dict[str, str]) -> str:
    """The folder about for the file at ``path``: its own folder's, else its parent folder's."""
    if not abouts or not takes_folder_about(path):
        return ""
    parts = path.split("/")[:-1]
    for up in (0, 1):
        if len(parts) - up < 0:
            break
        about = abouts.get("/".join(parts[: len(parts) - up]))
        if about:
            return about
    return ""
