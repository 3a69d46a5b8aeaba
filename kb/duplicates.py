"""Duplicate configuration: exact files, canonical data, repeated blocks, near-duplicates, prose.

Five kinds, each a different question about the same catalogue:

``exact``      byte-identical files (``files.sha256``); empty files are left out.
``canonical``  the same parsed data whatever the format, whitespace, key order, comments or quoting
               (``files.canonical_sha``, computed at ingest); groups whose members are all
               byte-identical are ``exact`` groups and are not repeated here.
``block``      an identical subtree of at least ``min_leaves`` leaves in two or more files, as N-way
               groups of *maximal* blocks: a group is dropped when every member's parent subtree is
               itself one duplicated block (the parent group reports it). A subtree's identity is
               the set of its (relative key path, value) leaves, so the block's own key name, the
               file format and the key order do not matter; values compare as text (``8080`` in
               YAML equals ``8080`` in a ``.properties`` file). Groups made only of whole documents
               are ``canonical`` groups and are not repeated here.
``near``       files, or top-level blocks, whose (key path, value) sets reach a Jaccard similarity of
               ``threshold``, found with MinHash LSH and then checked exactly. Signatures use
               datasketch's ``affine32`` scheme; the banding runs in numpy over all sets at once
               and returns exactly the candidates of datasketch's ``MinHashLSH`` (a test holds
               them equal) -- datasketch's one-key-at-a-time index alone would eat most of the
               time budget on a 50,000-file tree (``bench/duplicates.py``; figures in
               ``docs/performance.md``). Bands are sized for recall (a pair at exactly
               0.8 is missed with probability 1.5%, at 0.85 0.06%). Sets smaller than
               ``min_leaves`` are left out (tiny sets reach any ratio by accident). Groups are
               stars: a centre and every member at least ``threshold`` similar to it;
               ``similarity`` is the lowest member-to-centre Jaccard. A top-level block group whose
               files are already a near group of whole files is not repeated.
``semantic``   Markdown sections or prose values whose stored embeddings reach a cosine of
               ``semantic_threshold`` (read from the vector store through :mod:`kb.vectors`).
               Without stored vectors it returns nothing; :func:`semantic_unavailable` says why.

The heavy lifting is DuckDB SQL over ``records`` (subtree hashes are sums of 64-bit leaf hashes,
grouped by hash) and numpy (MinHash signatures); Python only touches groups.

Members: ``key_path`` is ``None`` for a whole file (or a whole document of a multi-document file),
lines are 1-based and inclusive. ``lines_saved`` is what folding the group would remove: all
copies but the longest for ``exact``/``canonical``/``block``, and for ``near`` the shared leaves
of every member but one (with ``suggest=True``, the lines the proposed base + overlays remove).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.errors import BadRequestError
from kb.formats import formats_with
from kb.keypaths import SEGMENT_RE, key_segments, split_key_path
from kb.keyword import chunk_body_text
from kb.types import DuplicateGroup, DuplicateKind, DuplicateMember

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from kb.catalogue import Catalogue
    from kb.settings import Settings

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "find_duplicates",
    "duplication_summary",
    "semantic_unavailable",
    "split_key_path",
    "key_segments",
    "typed_value",
]

KINDS: tuple[str, ...] = ("exact", "canonical", "block", "near", "semantic")
# what "every kind" means when none is named: semantic groups (similar prose) are opt-in, they
# are suggestions to read, not repeats to fold, and they drown the others on a prose-heavy tree
DEFAULT_KINDS: tuple[str, ...] = ("exact", "canonical", "block", "near")
"""Every duplicate kind, in report order."""


# A record's value as compared text: NULL gets a marker no real value has; booleans lower-cased.
_VNORM = (
    "CASE WHEN r.value IS NULL THEN chr(0) || 'null' WHEN r.value_type = 'bool' THEN lower(r.value) ELSE r.value END"
)
# Leading '.' of a relative path dropped, so a subtree at the root and one under a key compare.
_STRIP_DOT = "CASE WHEN starts_with({0}, '.') THEN substr({0}, 2) ELSE {0} END"

_NUM_PERM = 128
_PROSE_FORMATS = formats_with(lambda t: t.prose)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def find_duplicates(
    catalogue: Catalogue,
    settings: Settings,
    *,
    kinds: Sequence[str] | None = None,
    min_leaves: int = 5,
    threshold: float = 0.8,
    semantic_threshold: float = 0.9,
    suggest: bool = False,
    snapshot: Any = None,
) -> list[DuplicateGroup]:
    """Duplicate groups of the requested ``kinds`` (default: :data:`DEFAULT_KINDS`, every kind but
    ``semantic``, which is opt-in), in :data:`KINDS` order.

    ``snapshot`` (the :class:`~kb.generations.Snapshot` the catalogue belongs to) gives the
    ``semantic`` kind its vectors; without it that kind finds nothing.

    Within a kind, groups come largest saving first. ``suggest=True`` adds to each ``near`` group
    of whole files a proposed base plus per-file overlays (YAML, or JSON when every member is
    JSON) in ``suggestion``.
    """
    wanted = _check_kinds(kinds)
    if min_leaves < 1:
        raise BadRequestError(f"min_leaves must be at least 1 (got {min_leaves}).")
    for name, value in (("threshold", threshold), ("semantic_threshold", semantic_threshold)):
        if not 0.0 < value <= 1.0:
            raise BadRequestError(f"{name} must be in (0, 1] (got {value}); e.g. 0.8.")
    cur = catalogue.cursor()
    try:
        finder = _Finder(cur, settings, min_leaves)
        groups: list[DuplicateGroup] = []
        if "exact" in wanted:
            groups += finder.exact()
        if "canonical" in wanted:
            groups += finder.canonical()
        if "block" in wanted:
            groups += finder.block()
        if "near" in wanted:
            groups += finder.near(threshold, suggest=suggest)
    finally:
        cur.close()
    if "semantic" in wanted:
        groups += _semantic(catalogue, settings, semantic_threshold, snapshot)
    return groups


_NO_END = 2**31 - 1
"""The last line of a copy whose lines are not known (the whole file)."""


def _distinct_lines(rows: Sequence[tuple[str, str | None, int, int]]) -> int:
    """Lines the removable copies ``(path, key_path, first line, last line)`` cover, each line once."""
    by_path: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for path, _, lo, hi in rows:
        if lo and hi < _NO_END:
            by_path[path].append((lo, hi))
    total = 0
    for spans in by_path.values():
        end = 0
        for lo, hi in sorted(spans):
            if hi > end:
                total += hi - max(lo, end + 1) + 1
                end = hi
    return total


def duplication_summary(catalogue: Catalogue, groups: Sequence[DuplicateGroup]) -> dict[str, Any]:
    """How much of the tree is duplicated.

    ``duplication_ratio`` = duplicated leaf values / all leaf values, where a leaf is duplicated
    when it lies in a copy that folding an ``exact``, ``canonical`` or ``block`` group would
    remove (every member but the group's first; a leaf is counted once however many groups cover
    it). ``near`` and ``semantic`` groups are similar, not identical, so they are counted per kind
    but not in the ratio. ``lines_saved``: the lines those same copies hold, each line once (an
    exact copy of a file is also a ``block`` group's member: one line, not two);
    ``lines_saved_by_kind`` adds each kind's groups as they say, overlaps and all.
    """
    by_kind = dict.fromkeys(KINDS, 0)
    members_by_kind = dict.fromkeys(KINDS, 0)
    saved_by_kind = dict.fromkeys(KINDS, 0)
    rows: list[tuple[str, str | None, int, int]] = []
    for g in groups:
        by_kind[g.kind] += 1
        members_by_kind[g.kind] += len(g.members)
        saved_by_kind[g.kind] += g.lines_saved
        if g.kind in ("exact", "canonical", "block"):
            for m in g.members[1:]:
                rows.append((m.path, m.key_path, m.line_start or 0, m.line_end or _NO_END))
    cur = catalogue.cursor()
    try:
        total = cur.execute("SELECT count(*) FROM records").fetchall()[0][0]
        duplicated = 0
        if rows and total:
            import pyarrow as pa

            cols = list(zip(*rows))
            cur.register(
                "_dup_cover",
                pa.table(
                    {
                        "path": pa.array(cols[0], pa.string()),
                        "key_path": pa.array(cols[1], pa.string()),
                        "l0": pa.array(cols[2], pa.int64()),
                        "l1": pa.array(cols[3], pa.int64()),
                    }
                ),
            )
            duplicated = cur.execute(
                """SELECT count(*) FROM (
                     SELECT DISTINCT r.path, r.doc, r.key_path FROM records r JOIN _dup_cover c
                       ON r.path = c.path AND r.line BETWEEN c.l0 AND c.l1
                      AND (c.key_path IS NULL OR r.key_path = c.key_path
                           OR starts_with(r.key_path, c.key_path || '.')
                           OR starts_with(r.key_path, c.key_path || '['))) t"""
            ).fetchall()[0][0]
    finally:
        cur.close()
    return {
        "groups": len(groups),
        "groups_by_kind": by_kind,
        "members_by_kind": members_by_kind,
        "lines_saved_by_kind": saved_by_kind,
        "lines_saved": _distinct_lines(rows),
        "leaf_values": int(total),
        "duplicated_leaf_values": int(duplicated),
        "duplication_ratio": round(duplicated / total, 4) if total else 0.0,
    }


def semantic_unavailable(catalogue: Catalogue, settings: Settings, snapshot: Any = None) -> str | None:
    """Why the ``semantic`` kind cannot run on this KB (no vectors, no vector store), or None."""
    reader = _vector_reader(catalogue, settings, snapshot)
    return reader if isinstance(reader, str) else None


def typed_value(value: str | None, value_type: str) -> Any:
    """A catalogue record value (text + type) back to its JSON value."""
    if value_type == "null" or value is None:
        return None
    try:
        if value_type == "int":
            return int(value)
        if value_type == "float":
            return float(value)
    except ValueError:
        return value
    if value_type == "bool":
        return value.lower() == "true"
    if value_type == "object":
        return {}
    if value_type == "array":
        return []
    return value


# ---------------------------------------------------------------------------------------------
# The structural kinds
# ---------------------------------------------------------------------------------------------


def _check_kinds(kinds: Sequence[str] | None) -> list[str]:
    if not kinds:
        return list(DEFAULT_KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise BadRequestError(f"Unknown duplicate kind '{unknown[0]}' (known: {', '.join(KINDS)}).")
    return [k for k in KINDS if k in kinds]


class _Finder:
    """Runs the SQL for one ``find_duplicates`` call on its own cursor (temp tables vanish with it)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, settings: Settings, min_leaves: int) -> None:
        self.cur = cur
        self.settings = settings
        self.min_leaves = min_leaves
        self._lines: dict[str, int] | None = None
        self._segments_ready = False

    # -- helpers --------------------------------------------------------------------------------

    def file_lines(self) -> dict[str, int]:
        """path -> number of lines (the last line any record or section reaches)."""
        if self._lines is None:
            rows = self.cur.execute(
                """SELECT path, max(l) FROM (
                       SELECT path, max(line) AS l FROM records GROUP BY path
                       UNION ALL SELECT path, max(line_end) FROM sections GROUP BY path) GROUP BY path"""
            ).fetchall()
            self._lines = {p: int(n or 0) for p, n in rows}
        return self._lines

    def lines_of(self, path: str) -> int:
        n = self.file_lines().get(path, 0)
        if n <= 0 and self.settings.root is not None:
            try:  # an unparsed file (a template, plain text): count on disk when the tree is there
                with open(self.settings.root / path, "rb") as fh:
                    data = fh.read()
                n = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
            except OSError:
                n = 0
            self.file_lines()[path] = n
        return max(n, 1)

    def ensure_segments(self) -> None:
        """``_dup_kp``: each distinct key path split into segments (the regex mirrors key_join)."""
        if self._segments_ready:
            return
        self.cur.execute(
            """CREATE TEMP TABLE _dup_kp AS
               SELECT key_path, segs, len(segs) AS nseg FROM (
                 SELECT key_path, CASE WHEN array_to_string(s, '') = key_path THEN s ELSE [key_path] END AS segs
                 FROM (SELECT key_path, regexp_extract_all(key_path, ?) AS s
                       FROM (SELECT DISTINCT key_path FROM records WHERE key_path IS NOT NULL AND key_path <> '')))""",
            [SEGMENT_RE],
        )
        self._segments_ready = True

    # -- exact and canonical --------------------------------------------------------------------

    def exact(self) -> list[DuplicateGroup]:
        rows = self.cur.execute(
            """SELECT list(path ORDER BY path) FROM files
               WHERE sha256 IS NOT NULL AND size > 0 GROUP BY sha256 HAVING count(*) >= 2"""
        ).fetchall()
        groups = [self._whole_file_group("exact", paths, 1.0) for (paths,) in rows]
        return _ordered(groups)

    def canonical(self) -> list[DuplicateGroup]:
        # Only data with at least one non-empty leaf: ``{}`` in JSON and ``{}`` in YAML is no finding.
        rows = self.cur.execute(
            """SELECT list(f.path ORDER BY f.path) FROM files f
               WHERE f.canonical_sha IS NOT NULL AND f.status = 'ok'
                 AND EXISTS (SELECT 1 FROM records r WHERE r.path = f.path
                             AND r.value_type NOT IN ('object', 'array'))
               GROUP BY f.canonical_sha HAVING count(DISTINCT f.sha256) >= 2"""
        ).fetchall()
        groups = [self._whole_file_group("canonical", paths, 1.0) for (paths,) in rows]
        return _ordered(groups)

    def _whole_file_group(self, kind: DuplicateKind, paths: Sequence[str], similarity: float) -> DuplicateGroup:
        lines = [self.lines_of(p) for p in paths]
        members = [DuplicateMember(path=p, key_path=None, line_start=1, line_end=n) for p, n in zip(paths, lines)]
        return DuplicateGroup(kind=kind, similarity=similarity, members=members, lines_saved=sum(lines) - max(lines))

    # -- block ----------------------------------------------------------------------------------

    def subtrees(self) -> None:
        """``_dup_sub``: every subtree (path, doc, prefix) with >= min_leaves leaves and its hash.

        A record contributes to the subtree of each of its ancestors (the document root is prefix
        ''); the subtree's hash is the sum of ``hash(relative key path, value)`` over its leaves,
        so it does not depend on key order, and its size is its leaf count.
        """
        self.ensure_segments()
        self.cur.execute(
            f"""CREATE TEMP TABLE _dup_anc AS
                SELECT key_path, i, prefix,
                       CASE WHEN i = 0 THEN NULL ELSE array_to_string(segs[1:i - 1], '') END AS parent,
                       {_STRIP_DOT.format("substr(key_path, length(prefix) + 1)")} AS rel
                FROM (SELECT key_path, segs, i, array_to_string(segs[1:i], '') AS prefix
                      FROM (SELECT key_path, segs, unnest(range(0, nseg)) AS i FROM _dup_kp))"""
        )
        self.cur.execute(
            f"""CREATE TEMP TABLE _dup_sub AS
                SELECT r.path, r.doc, a.prefix, any_value(a.parent) AS parent, any_value(a.i) AS depth,
                       sum(hash(a.rel, {_VNORM}))::HUGEINT AS h, count(*) AS n,
                       min(r.line) AS l0, max(r.line) AS l1
                FROM records r JOIN _dup_anc a USING (key_path)
                GROUP BY r.path, r.doc, a.prefix
                HAVING count(*) >= ?""",
            [self.min_leaves],
        )

    def block(self) -> list[DuplicateGroup]:
        self.subtrees()
        rows = self.cur.execute(
            """WITH g AS (
                 SELECT h, n FROM _dup_sub GROUP BY h, n HAVING count(DISTINCT path) >= 2),
               m AS (
                 SELECT s.*, p.h AS ph, p.n AS pn FROM _dup_sub s JOIN g USING (h, n)
                 LEFT JOIN _dup_sub p ON p.path = s.path AND p.doc = s.doc AND p.prefix = s.parent),
               keep AS (
                 SELECT h, n FROM m GROUP BY h, n
                 HAVING max(depth) > 0                       -- not only whole documents
                    AND NOT (count(ph) = count(*)            -- every member has a parent ...
                             AND count(DISTINCT (ph, pn)) = 1))  -- ... and they are one block
               SELECT m.h, m.n, m.path, m.doc, m.prefix, m.l0, m.l1, sec.line_start, sec.line_end
               FROM m JOIN keep USING (h, n)
               LEFT JOIN (SELECT path, key_path, min(line_start) AS line_start, max(line_end) AS line_end
                          FROM sections GROUP BY path, key_path) sec
                 ON sec.path = m.path AND sec.key_path = m.prefix AND m.depth > 0
               ORDER BY m.h, m.n, m.path, m.doc, m.l0"""
        ).fetchall()
        docs_per_file = dict(
            self.cur.execute(
                "SELECT path, count(DISTINCT doc) FROM records GROUP BY path HAVING count(DISTINCT doc) > 1"
            ).fetchall()
        )
        grouped: dict[tuple, list[tuple]] = defaultdict(list)
        for h, n, path, doc, prefix, l0, l1, s0, s1 in rows:
            grouped[(h, n)].append((path, doc, prefix, l0, l1, s0, s1))
        groups = []
        for (_h, _n), members in grouped.items():
            out, spans = [], []
            for path, _doc, prefix, l0, l1, s0, s1 in members:
                if prefix == "":  # a whole document
                    if path in docs_per_file:
                        start, end = int(l0), int(l1)
                    else:
                        start, end = 1, self.lines_of(path)
                    key = None
                else:
                    # Prefer the section's range (it includes the block's own key line) when it
                    # covers the leaves; else the leaves' own lines.
                    if s0 is not None and s0 <= l0 and s1 >= l1:
                        start, end = int(s0), int(s1)
                    else:
                        start, end = int(l0), int(l1)
                    key = prefix
                out.append(DuplicateMember(path=path, key_path=key, line_start=start, line_end=end))
                spans.append(end - start + 1)
            groups.append(
                DuplicateGroup(kind="block", similarity=1.0, members=out, lines_saved=sum(spans) - max(spans))
            )
        return _ordered(groups)

    # -- near -----------------------------------------------------------------------------------

    def near(self, threshold: float, *, suggest: bool = False) -> list[DuplicateGroup]:
        self.ensure_segments()
        # Whole files: the set of (doc, key path, value).
        file_sets = self._sets(
            "files", f"SELECT r.path, 0 AS doc, '' AS top, hash(r.doc, r.key_path, {_VNORM}) AS e FROM records r"
        )
        # Top-level blocks: the set of (key path below the block, value); the block's name is not part.
        block_sets = self._sets(
            "blocks",
            f"""SELECT r.path, r.doc, k.segs[1] AS top,
                       hash({_STRIP_DOT.format("substr(r.key_path, length(k.segs[1]) + 1)")}, {_VNORM}) AS e
                FROM records r JOIN _dup_kp k USING (key_path) WHERE k.nseg >= 2""",
        )

        groups: list[DuplicateGroup] = []
        grouped_files: list[set[str]] = []
        for sim, keys, shared in _near_groups(*file_sets, threshold):
            paths = [k[0] for k in keys]
            grouped_files.append(set(paths))
            lines = [self.lines_of(p) for p in paths]
            g = DuplicateGroup(
                kind="near",
                similarity=round(sim, 4),
                members=[
                    DuplicateMember(path=p, key_path=None, line_start=1, line_end=n) for p, n in zip(paths, lines)
                ],
                lines_saved=shared * (len(paths) - 1),
            )
            if suggest:
                text, removed = self.suggestion(paths)
                g.suggestion, g.lines_saved = text, max(removed, 0)
            groups.append(g)

        block_groups = _near_groups(*block_sets, threshold)
        if block_groups:
            sections = self._top_sections()
            block_lines = self._block_lines()
        for sim, keys, shared in block_groups:
            block_paths = {k[0] for k in keys}
            if any(block_paths <= fg for fg in grouped_files):
                continue  # the whole files are already a near group
            out = []
            for path, doc, top in keys:
                l0, l1 = block_lines[(path, doc, top)]
                s = sections.get((path, top))
                start, end = s if s and s[0] <= l0 and s[1] >= l1 else (l0, l1)
                out.append(DuplicateMember(path=path, key_path=top, line_start=int(start), line_end=int(end)))
            groups.append(
                DuplicateGroup(kind="near", similarity=round(sim, 4), members=out, lines_saved=shared * (len(keys) - 1))
            )
        return _ordered(groups)

    def _sets(self, name: str, elements_sql: str) -> tuple[list[list[tuple]], np.ndarray, np.ndarray]:
        """Sets of element hashes keyed by (path, doc, top), with at least ``min_leaves`` elements.

        Identical sets (same count and sum of element hashes) collapse into one class in SQL; only
        one representative's elements come back. Returns (members of each class, class id of each
        element, element) with elements sorted by class id.
        """
        t = f"_dup_{name}"
        self.cur.execute(f"CREATE OR REPLACE TEMP TABLE {t}_el AS {elements_sql}")
        self.cur.execute(
            f"""CREATE OR REPLACE TEMP TABLE {t}_set AS
                SELECT path, doc, top, count(*) AS n, sum(e)::HUGEINT AS hs
                FROM {t}_el GROUP BY path, doc, top HAVING count(*) >= ?""",
            [self.min_leaves],
        )
        self.cur.execute(
            f"""CREATE OR REPLACE TEMP TABLE {t}_cls AS
                SELECT hs, n, (row_number() OVER (ORDER BY min(struct_pack(path := path, doc := doc, top := top))) - 1)::BIGINT AS cid,
                       min(struct_pack(path := path, doc := doc, top := top)) AS rep
                FROM {t}_set GROUP BY hs, n"""
        )
        members: list[list[tuple]] = [
            [] for _ in range(self.cur.execute(f"SELECT count(*) FROM {t}_cls").fetchall()[0][0])
        ]
        for cid, path, doc, top in self.cur.execute(
            f"SELECT c.cid, s.path, s.doc, s.top FROM {t}_set s JOIN {t}_cls c USING (hs, n) ORDER BY s.path, s.doc, s.top"
        ).fetchall():
            members[cid].append((path, doc, top))
        arrays = self.cur.execute(
            f"""SELECT c.cid, e.e FROM {t}_el e JOIN {t}_cls c
                  ON c.rep.path = e.path AND c.rep.doc = e.doc AND c.rep.top = e.top
                ORDER BY c.cid, e.e"""
        ).fetchnumpy()
        return members, np.asarray(arrays["cid"], dtype=np.int64), np.asarray(arrays["e"], dtype=np.uint64)

    def _block_lines(self) -> dict[tuple[str, int, str], tuple[int, int]]:
        rows = self.cur.execute(
            """SELECT path, doc, top, min(line), max(line) FROM (
                   SELECT r.path, r.doc, k.segs[1] AS top, r.line FROM records r JOIN _dup_kp k USING (key_path)
                   WHERE k.nseg >= 2) JOIN _dup_blocks_set USING (path, doc, top)
               GROUP BY path, doc, top"""
        ).fetchall()
        return {(p, d, t): (a, b) for p, d, t, a, b in rows}

    def _top_sections(self) -> dict[tuple[str, str], tuple[int, int]]:
        rows = self.cur.execute(
            "SELECT path, key_path, min(line_start), max(line_end) FROM sections GROUP BY path, key_path"
        ).fetchall()
        return {(p, k): (a, b) for p, k, a, b in rows}

    # -- suggestion -----------------------------------------------------------------------------

    def suggestion(self, paths: Sequence[str]) -> tuple[str, int]:
        """A base (what every file shares) plus one overlay per file, and the lines it removes."""
        rows = self.cur.execute(
            """SELECT r.path, r.doc, r.key_path, r.value, r.value_type, f.format FROM records r
               JOIN files f USING (path) WHERE r.path IN (SELECT unnest(?)) ORDER BY r.path, r.doc, r.line""",
            [list(paths)],
        ).fetchall()
        formats: dict[str, str] = {}
        units: dict[str, dict[str, Any]] = {p: {} for p in paths}
        for path, doc, key_path, value, vtype, fmt in rows:
            formats[path] = fmt
            if doc:  # overlays of multi-document files are out of scope: keep the first document
                continue
            segs = split_key_path(key_path)
            # A list is one unit: configuration merges replace lists, they do not merge them.
            cut = next((i for i, s in enumerate(segs) if isinstance(s, int)), len(segs))
            unit = json.dumps(segs[:cut])
            units[path].setdefault(unit, []).append((segs[cut:], typed_value(value, vtype)))
        as_json = all(formats.get(p) == "json" for p in paths)
        frozen = {p: {u: json.dumps(v, sort_keys=True, default=str) for u, v in us.items()} for p, us in units.items()}
        first = frozen[paths[0]]
        base_units = [u for u, v in first.items() if all(frozen[p].get(u) == v for p in paths[1:])]
        base = _unflatten([(json.loads(u), units[paths[0]][u]) for u in base_units])
        overlays = {
            p: _unflatten([(json.loads(u), v) for u, v in units[p].items() if u not in set(base_units)]) for p in paths
        }
        render = _render_json if as_json else _render_yaml
        base_text = render(base)
        name = _base_name(paths, "json" if as_json else "yaml")
        out = [f"# base: {name} ({len(base_units)} shared keys)", base_text.rstrip("\n")]
        new_lines = base_text.count("\n")
        for p in paths:
            text = render(overlays[p]) if overlays[p] else ""
            new_lines += max(text.count("\n"), 1)
            out.append(f"# overlay: {p} (merged over the base)")
            out.append(text.rstrip("\n") if text else "# (nothing: the file equals the base)")
        removed = sum(self.lines_of(p) for p in paths) - new_lines
        out.append(f"# lines removed: {removed}")
        return "\n".join(out) + "\n", removed


def _base_name(paths: Sequence[str], ext: str) -> str:
    dirs = [p.rsplit("/", 1)[0] if "/" in p else "" for p in paths]
    common = dirs[0]
    for d in dirs[1:]:
        while common and not (d == common or d.startswith(common + "/")):
            common = common.rsplit("/", 1)[0] if "/" in common else ""
    return f"{common}/_base.{ext}" if common else f"_base.{ext}"


def _unflatten(units: Iterable[tuple[list, list[tuple[list, Any]]]]) -> Any:
    """Rebuild nested data from (unit key segments, [(segments below the unit, value)])."""
    root: dict = {}
    for unit_segs, leaves in units:
        for rest, value in leaves:
            segs = list(unit_segs) + list(rest)
            if not segs:
                continue
            node = root
            for seg in segs[:-1]:
                child = node.get(seg)
                if not isinstance(child, dict):
                    child = node[seg] = {}
                node = child
            if not (isinstance(value, (dict, list)) and segs[-1] in node):
                node[segs[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    """Dicts whose keys are all ints become lists (gaps filled with None)."""
    if isinstance(node, dict):
        conv = {k: _lists(v) for k, v in node.items()}
        if conv and all(isinstance(k, int) for k in conv):
            out = [None] * (max(conv) + 1)
            for k, v in conv.items():
                out[k] = v
            return out
        return conv
    return node


def _render_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _render_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _ordered(groups: list[DuplicateGroup]) -> list[DuplicateGroup]:
    return sorted(
        groups, key=lambda g: (-g.lines_saved, -len(g.members), g.members[0].path, g.members[0].key_path or "")
    )


# ---------------------------------------------------------------------------------------------
# MinHash LSH
# ---------------------------------------------------------------------------------------------

_RNG = np.random.default_rng(20240917)
_A = (_RNG.integers(1, 2**32, size=_NUM_PERM, dtype=np.uint64) | 1).astype(np.uint32)
_B = _RNG.integers(0, 2**32, size=_NUM_PERM, dtype=np.uint64).astype(np.uint32)
_BAND_MIX = _RNG.integers(1, 2**63, size=_NUM_PERM, dtype=np.uint64) | np.uint64(1)
_MARGIN = 0.1  # MinHash estimates this far below the threshold are still checked (~3 sd at 128 perms)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _signatures(cid: np.ndarray, elems: np.ndarray, n_sets: int) -> np.ndarray:
    """MinHash signatures (``n_sets`` x 128, uint32) in numpy.

    The scheme is datasketch's ``affine32`` (a MurmurHash3 pre-mix, then ``a * h + b mod 2**32``
    per permutation), so a row can be loaded as ``LeanMinHash(seed=1, hashvalues=row,
    scheme="affine32")``. ``cid``/``elems`` are sorted by set id; one pass per permutation over
    the whole element array (a 1-D ``minimum.reduceat``, faster than a 2-D one: ``docs/performance.md``).
    """
    sig = np.full((n_sets, _NUM_PERM), np.iinfo(np.uint32).max, dtype=np.uint32)
    if n_sets == 0 or len(cid) == 0:
        return sig
    h = _fmix32((elems & np.uint64(0xFFFFFFFF)).astype(np.uint32) ^ (elems >> np.uint64(32)).astype(np.uint32))
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    rows = cid[starts]
    with np.errstate(over="ignore"):
        for k in range(_NUM_PERM):
            sig[rows, k] = np.minimum.reduceat(h * _A[k] + _B[k], starts)
    return sig


def _miss(threshold: float, bands: int, rows: int, min_bands: int) -> float:
    """Probability that a pair at exactly ``threshold`` collides in fewer than ``min_bands`` bands."""
    p = threshold**rows
    return sum(math.comb(bands, k) * p**k * (1 - p) ** (bands - k) for k in range(min_bands))


def _lsh_params(threshold: float) -> tuple[int, int, int]:
    """(bands, rows, min_bands) for recall: the most rows per band such that a pair at exactly
    ``threshold`` collides in at least ``min_bands`` = 2 bands with probability >= 98.5%
    (at 0.8: 21 bands of 6 rows; a pair at 0.85 is missed with probability 0.06%).

    Asking for two colliding bands instead of one keeps ~1/5 of the candidates of a templated
    tree: most pairs that collide once are far below the threshold. (datasketch's default
    parameters, tuned for precision, miss 60% of the pairs at exactly 0.8.)
    """
    for r in range(_NUM_PERM // 2, 0, -1):
        b = _NUM_PERM // r
        if _miss(threshold, b, r, 2) <= 0.015:
            return b, r, 2
    return _NUM_PERM, 1, 1


def _lsh_candidates(sig: np.ndarray, bands: int, rows: int, min_bands: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (i < j): sets whose signatures agree on every row of ``min_bands`` bands.

    With ``min_bands=1`` this is exactly the banding of datasketch's ``MinHashLSH(params=(bands,
    rows))`` (a test holds them equal), done for all sets at once: each band's rows are mixed into
    one 64-bit key, keys are sorted, and every bucket of equal keys yields its pairs. datasketch
    inserts and queries one key at a time, too slow for the time budget on a 50,000-file tree
    (``bench/duplicates.py``; figures in ``docs/performance.md``).
    """
    n = len(sig)
    found: list[np.ndarray] = []
    with np.errstate(over="ignore"):
        for band in range(bands):
            cols = sig[:, band * rows : (band + 1) * rows].astype(np.uint64)
            key = (cols * _BAND_MIX[:rows]).sum(axis=1)
            order = np.argsort(key, kind="stable")
            sk = key[order]
            starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
            sizes = np.diff(np.r_[starts, n])
            for size in np.unique(sizes[sizes >= 2]).tolist():
                first = starts[sizes == size]
                members = order[first[:, None] + np.arange(size)[None, :]]
                iu, ju = np.triu_indices(size, 1)
                a, b = members[:, iu].ravel(), members[:, ju].ravel()
                found.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    pairs = np.sort(np.concatenate(found))  # sort + run lengths: np.unique's hash path is slower here
    starts = np.flatnonzero(np.r_[True, pairs[1:] != pairs[:-1]])
    counts = np.diff(np.r_[starts, len(pairs)])
    pairs = pairs[starts[counts >= min_bands]]
    return pairs // n, pairs % n


def _estimate_filter(sig: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs whose MinHash estimate reaches ``threshold - _MARGIN``.

    Most candidates of a templated tree are far below the threshold, so the first 32 permutations
    reject them (a lenient cut: ~3.5 standard deviations) before all 128 are compared.
    """
    keep = np.zeros(len(a), dtype=bool)
    step = 500_000
    for lo in range(0, len(a), step):
        x, y = a[lo : lo + step], b[lo : lo + step]
        rough = (sig[x, :32] == sig[y, :32]).mean(axis=1) >= threshold - 0.25
        idx = np.flatnonzero(rough)
        fine = (sig[x[idx]] == sig[y[idx]]).mean(axis=1) >= threshold - _MARGIN
        keep[lo + idx[fine]] = True
    return a[keep], b[keep]


def _near_groups(
    members: list[list[tuple]], cid: np.ndarray, elems: np.ndarray, threshold: float
) -> list[tuple[float, list[tuple], int]]:
    """Star groups of classes with Jaccard >= threshold: (similarity, member keys, shared count).

    Each class is a set of identical sets (those are exact, canonical or block duplicates), so a
    group needs two or more classes. MinHash LSH gives candidate pairs, their MinHash estimate
    filters them, and the exact Jaccard decides. Groups are stars: the class with the most
    verified neighbours first, with every unassigned neighbour; ``similarity`` is the lowest
    member-to-centre Jaccard.
    """
    n = len(members)
    if n < 2 or len(cid) == 0:
        return []
    sig = _signatures(cid, elems, n)
    a, b = _lsh_candidates(sig, *_lsh_params(threshold))
    a, b = _estimate_filter(sig, a, b, threshold)
    if len(a) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    first = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    first[cid[starts]] = starts
    last[cid[starts]] = np.r_[starts[1:], len(cid)]
    sim: dict[int, dict[int, float]] = defaultdict(dict)
    for i, j in zip(a.tolist(), b.tolist()):
        x, y = elems[first[i] : last[i]], elems[first[j] : last[j]]
        inter = len(np.intersect1d(x, y, assume_unique=True))
        jac = inter / (len(x) + len(y) - inter)
        if jac >= threshold:
            sim[i][j] = sim[j][i] = jac
    assigned: set[int] = set()
    out = []
    for centre in sorted(sim, key=lambda r: (-len(sim[r]), r)):
        if centre in assigned:
            continue
        mates = [c for c in sorted(sim[centre], key=lambda c: (-sim[centre][c], c)) if c not in assigned]
        if not mates:
            continue
        assigned.update([centre, *mates])
        shared = elems[first[centre] : last[centre]]
        for c in mates:
            shared = np.intersect1d(shared, elems[first[c] : last[c]], assume_unique=True)
        keys = sorted(k for c in [centre, *mates] for k in members[c])
        out.append((min(sim[centre][c] for c in mates), keys, int(len(shared))))
    return out


# ---------------------------------------------------------------------------------------------
# Semantic
# ---------------------------------------------------------------------------------------------


def _vector_reader(catalogue: Catalogue, settings: Settings, snapshot: Any = None):
    """A callable returning (chunk ids, embedding matrix) of stored prose chunks, or a reason."""
    view = snapshot.vectors if snapshot is not None else None
    if view is None:
        return (
            "the knowledge base has no stored embeddings; build it with embeddings "
            "(`kb ingest PATH` with embed on, the default)"
        )
    n = catalogue.query(
        "SELECT count(*) FROM chunks c JOIN files f USING (path) WHERE f.format IN (SELECT unnest(?))",
        [list(_PROSE_FORMATS)],
    )[0][0]
    if not n:
        return "the knowledge base has no Markdown or text sections to compare"

    def load(catalogue: Catalogue, settings: Settings) -> tuple[list[str], np.ndarray]:
        from kb.vectors import sha_bytes

        rows = catalogue.query(
            """SELECT c.chunk_id, c.text_sha FROM chunks c JOIN files f USING (path)
               WHERE f.format IN (SELECT unnest(?)) AND c.embed ORDER BY c.path, c.ordinal""",
            [list(_PROSE_FORMATS)],
        )
        if not rows:
            return [], np.zeros((0, 1), dtype=np.float32)
        vec_rows = view.rows_of(sha_bytes([sha for _, sha in rows]))
        keep = vec_rows >= 0
        ids = [cid for (cid, _), k in zip(rows, keep) if k]
        if not ids:
            return [], np.zeros((0, 1), dtype=np.float32)
        return ids, view.vectors(vec_rows[keep])

    return load


def _semantic(catalogue: Catalogue, settings: Settings, threshold: float, snapshot: Any = None) -> list[DuplicateGroup]:
    reader = _vector_reader(catalogue, settings, snapshot)
    if isinstance(reader, str):
        return []
    ids, matrix = reader(catalogue, settings)
    return _semantic_groups(catalogue, ids, matrix, threshold)


SEMANTIC_MIN_WORDS = 12
"""A chunk joins ``semantic`` groups only with this many words past its context line: a chunk of a
few words ("the Work and Derivative Works thereof.", "fi; done") is embedded mostly as its context
line (path, and what its folder says it is), so two of them in one folder look alike whatever
they say."""
_WORD = re.compile(r"[^\W\d_]{2,}")  # letters of any script


def _words_of_body(text: str) -> int:
    return len(_WORD.findall(chunk_body_text(text))) if "\n" in text else 0


def _semantic_groups(
    catalogue: Catalogue, ids: Sequence[str], matrix: np.ndarray, threshold: float
) -> list[DuplicateGroup]:
    """Star groups of prose chunks (Markdown, text, long string values) with cosine >= threshold."""
    if len(ids) < 2:
        return []
    rows = catalogue.query_dicts(
        """SELECT c.chunk_id, c.path, c.key_path, c.line_start, c.line_end, f.format, c.text
           FROM chunks c JOIN files f USING (path) WHERE c.chunk_id IN (SELECT unnest(?))""",
        [list(ids)],
    )
    info = {r["chunk_id"]: r for r in rows}
    keep = [
        i
        for i, cid in enumerate(ids)
        if cid in info
        and info[cid]["format"] in _PROSE_FORMATS
        and _words_of_body(info[cid]["text"]) >= SEMANTIC_MIN_WORDS
    ]
    if len(keep) < 2:
        return []
    ids = [ids[i] for i in keep]
    m = np.asarray(matrix, dtype=np.float32)[keep]
    m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    sim: dict[int, dict[int, float]] = defaultdict(dict)
    step = 2048
    for lo in range(0, len(ids), step):
        block = m[lo : lo + step] @ m.T
        rr, cc = np.nonzero(block >= threshold)
        for r, c in zip(rr.tolist(), cc.tolist()):
            r += lo
            if r < c and info[ids[r]]["path"] != info[ids[c]]["path"]:
                sim[r][c] = sim[c][r] = float(block[r - lo, c])
    order = sorted((r for r in sim if sim[r]), key=lambda r: (-len(sim[r]), r))
    assigned: set[int] = set()
    groups = []
    for centre in order:
        if centre in assigned:
            continue
        mates = [c for c in sorted(sim[centre], key=lambda c: (-sim[centre][c], c)) if c not in assigned]
        if not mates:
            continue
        star = sorted([centre] + mates, key=lambda i: (info[ids[i]]["path"], info[ids[i]]["line_start"]))
        assigned.update(star)
        members = [
            DuplicateMember(
                path=info[ids[i]]["path"],
                key_path=info[ids[i]]["key_path"],
                line_start=info[ids[i]]["line_start"],
                line_end=info[ids[i]]["line_end"],
            )
            for i in star
        ]
        spans = [(mm.line_end or 0) - (mm.line_start or 0) + 1 for mm in members]
        groups.append(
            DuplicateGroup(
                kind="semantic",
                similarity=round(min(sim[centre][c] for c in mates), 4),
                members=members,
                lines_saved=sum(spans) - max(spans),
            )
        )
    return _ordered(groups)
