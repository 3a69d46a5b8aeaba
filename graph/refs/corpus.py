"""What reference resolution needs from the catalogue: files, folders, documents, line numbers."""

from __future__ import annotations

import bisect
import json
import posixpath
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kb.catalogue import Catalogue
from kb.keypaths import join_key_path, split_key_path
from kb.settings import Settings

__all__ = ["Corpus", "LineIndex", "line_indexes"]


class Corpus:
    """What reference resolution needs from the catalogue: files, folders, documents, records.

    Existence is decided by the catalogue first (files and their folders), then, for targets kb
    does not catalogue (images, source folders, Dockerfiles in ignored folders), by a ``stat``
    under the corpus root when it is available.
    """

    def __init__(self, catalogue: Catalogue, settings: Settings) -> None:
        self.catalogue = catalogue
        self.settings = settings
        rows = catalogue.query("SELECT path, format, status FROM files")
        self.formats: dict[str, str] = {p: f for p, f, _ in rows}
        self.status: dict[str, str] = {p: st for p, _, st in rows}
        self.dirs: set[str] = {""}
        for p in self.formats:
            d = posixpath.dirname(p)
            while d not in self.dirs:
                self.dirs.add(d)
                d = posixpath.dirname(d)
        self.root: Path | None = settings.with_root_of(catalogue).root
        if self.root is not None and not self.root.is_dir():
            self.root = None
        extra = settings.ref_roots
        self.extra_roots: list[str] = [posixpath.normpath(str(r)).strip("/") for r in extra]
        self._disk: dict[str, bool | None] = {}
        self._ignore_specs: dict[str, Any] = {}
        self._ignore_extra: Any = None
        self.basenames: set[str] = {posixpath.basename(p) for p in self.formats}
        self._docs: dict[tuple[str, int], Any] = {}
        self._doc_index: dict[str, set[int]] = defaultdict(set)

    # -- existence ------------------------------------------------------------------------------

    def _on_disk(self, rel: str) -> str | None:
        """'file', 'dir' or None for a path under the root that the catalogue does not hold."""
        if self.root is None:
            return None
        if rel not in self._disk:
            p = self.root / rel
            self._disk[rel] = True if p.is_file() else (False if p.is_dir() else None)
        v = self._disk[rel]
        return None if v is None else ("file" if v else "dir")

    def ignored(self, rel: str, *, is_dir: bool = False) -> bool:
        """Whether ``rel`` is ignored by a ``.gitignore`` or ``.kbignore`` on its way from the
        corpus root (or by the ``ignore`` setting): something the tree's owners create at run
        time or keep out of version control, so its absence is not a broken reference."""
        import pathspec

        parts = [p for p in rel.split("/") if p]
        if not parts or parts[0] == "..":
            return False
        if self._ignore_extra is None:
            lines = list(self.settings.ignore or [])
            self._ignore_extra = pathspec.GitIgnoreSpec.from_lines(lines) if lines else False
        if self._ignore_extra and self._ignore_extra.match_file(rel + ("/" if is_dir else "")):
            return True
        for i in range(len(parts)):
            base = "/".join(parts[:i])
            spec = self._ignore_spec(base)
            if spec is None:
                continue
            # the path, or any folder on its way, ignored from this folder
            for j in range(i + 1, len(parts) + 1):
                sub = "/".join(parts[i:j])
                folder = j < len(parts) or is_dir
                if spec.match_file(sub + "/" if folder else sub):
                    return True
        return False

    def _ignore_spec(self, folder: str) -> Any:
        """The patterns of ``folder``'s .gitignore and .kbignore (read from disk once), or None."""
        if folder in self._ignore_specs:
            return self._ignore_specs[folder]
        spec = None
        if self.root is not None:
            import pathspec

            lines: list[str] = []
            for name in (".gitignore", ".kbignore"):
                try:
                    text = (self.root / folder / name).read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                lines += [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            spec = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        self._ignore_specs[folder] = spec
        return spec

    def kind_of(self, rel: str) -> str | None:
        if rel in self.formats:
            return "file"
        if rel in self.dirs:
            return "dir"
        if rel.startswith("../") or rel == "..":
            return None
        return self._on_disk(rel)

    def exists(self, rel: str) -> bool:
        return self.kind_of(rel) is not None

    def is_file(self, rel: str) -> bool:
        return self.kind_of(rel) == "file"

    # -- resolution -----------------------------------------------------------------------------

    def candidates(self, source: str, target: str, *, root_relative: bool = True) -> list[str]:
        """Where a relative ``target`` written in ``source`` may point, in resolution order."""
        base = posixpath.dirname(source)
        out = [posixpath.normpath(posixpath.join(base, target))]
        if root_relative and not target.startswith(("./", "../")):
            out.append(posixpath.normpath(target))
            out += [posixpath.normpath(posixpath.join(r, target)) for r in self.extra_roots]
        return [("" if c == "." else c) for c in out]

    def resolve(self, source: str, target: str, *, root_relative: bool = True, want: str | None = None) -> str | None:
        for c in self.candidates(source, target, root_relative=root_relative):
            if c.startswith("../") or c == "..":
                continue
            k = self.kind_of(c)
            if k is not None and (want is None or k == want):
                return c
        return None

    def best_guess(self, source: str, target: str) -> str:
        """The path a broken relative reference most likely meant (for the message)."""
        cands = self.candidates(source, target)
        if len(cands) > 1 and not target.startswith(("./", "../")):
            first = target.split("/", 1)[0]
            if "/" in target and first in self.dirs and first != "":
                return cands[1]
        return cands[0]

    def escapes_root(self, source: str, target: str) -> bool:
        c = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
        return c == ".." or c.startswith("../")

    # -- documents ------------------------------------------------------------------------------

    def document(self, path: str, doc: int = 0) -> Any:
        key = (path, doc)
        if key not in self._docs:
            rows = self.catalogue.query("SELECT data FROM documents WHERE path = ? AND doc = ?", [path, doc])
            self._docs[key] = json.loads(rows[0][0]) if rows else None
            self._doc_index[path].add(doc)
        return self._docs[key]

    def load_documents(self, paths: Iterable[str]) -> None:
        """Bulk-load documents of ``paths`` into the cache."""
        want = [p for p in set(paths) if (p, 0) not in self._docs]
        if not want:
            return
        rows = self.catalogue.query("SELECT path, doc, data FROM documents WHERE path IN (SELECT unnest(?))", [want])
        for p in want:
            self._docs.setdefault((p, 0), None)
            self._doc_index[p].add(0)
        for p, d, data in rows:
            try:
                self._docs[(p, d)] = json.loads(data)
            except ValueError:
                self._docs[(p, d)] = None
            self._doc_index[p].add(d)

    def documents_of(self, path: str) -> list[tuple[int, Any]]:
        out = [(d, self._docs.get((path, d))) for d in sorted(self._doc_index.get(path, ()))]
        return [(d, v) for d, v in out if v is not None]

    def forget(self, path: str) -> None:
        """Drop ``path``'s documents from the cache (memory stays flat over big trees)."""
        for d in self._doc_index.pop(path, ()):
            self._docs.pop((path, d), None)


class LineIndex:
    """key_path -> line for one file's records; a mapping key takes its first child's line."""

    def __init__(self, rows: Iterable[tuple[int, str, int]]) -> None:
        self.exact: dict[tuple[int, str], int] = {}
        self.sorted: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for doc, kp, line in rows:
            if line is None:
                continue
            self.exact[(doc, kp)] = line
            self.sorted[doc].append((kp, line))
        for v in self.sorted.values():
            v.sort()

    def line(self, doc: int, kp: str) -> int | None:
        if (doc, kp) in self.exact:
            return self.exact[(doc, kp)]
        items = self.sorted.get(doc)
        if not items:
            return None
        best = None
        if kp == "":
            return min(line for _, line in items)
        i = bisect.bisect_left(items, (kp, -1))
        while i < len(items) and items[i][0].startswith(kp):
            rest = items[i][0][len(kp) :]
            if rest[:1] in (".", "["):
                best = items[i][1] if best is None else min(best, items[i][1])
            i += 1
        if best is not None:
            return best
        parts = split_key_path(kp)
        if len(parts) > 1:  # not in the file (a missing property): its parent's line
            return self.line(doc, join_key_path(parts[:-1]))
        return min(line for _, line in items)


def line_indexes(catalogue: Catalogue, paths: Iterable[str]) -> dict[str, LineIndex]:
    paths = list(set(paths))
    if not paths:
        return {}
    rows = catalogue.query("SELECT path, doc, key_path, line FROM records WHERE path IN (SELECT unnest(?))", [paths])
    by_path: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for p, d, kp, line in rows:
        by_path[p].append((d, kp, line))
    return {p: LineIndex(by_path.get(p, [])) for p in paths}
