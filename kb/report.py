"""The health report: the whole tree on one page (``kb report``, ``GET /report``).

:func:`build_report` gathers the numbers (``kb report --json`` prints them); :func:`render_html`
turns them into one self-contained HTML page: styles, a small script and the charts (inline SVG
from :mod:`kb.charts`) are all in the file, so it opens from disk or a mail attachment with no
network. Like :mod:`kb.knowledge`, this module is a composition root at the façade level: it
imports :mod:`graph` only inside functions.

The health score
----------------
A weighted mean of four shares, each from 0 to 1, times 100:

===========================  ======  ==========================================================
component                    weight  value
===========================  ======  ==========================================================
``clean_files``              0.45    1 - (files with an error finding + half the files whose
                                     worst finding is a warning) / files
``unique_data``              0.20    1 - the duplication ratio (leaf values in removable exact,
                                     canonical and block copies / all leaf values)
``consistent_environments``  0.20    1 - drifting keys / keys of sibling environment files
                                     (1 when the tree has no sibling environment files); keys
                                     the ``drift_ignore`` setting declares intended do not count
``schema_coverage``          0.15    files checked against their JSON Schema / files that have
                                     or declare one (the schema map, ``$schema``, Helm, a
                                     catalog, kb's built-in catalogue of common files); a file
                                     nobody publishes a schema for costs nothing
===========================  ======  ==========================================================

Each component says the points it loses and how to earn them back (``lost``, ``how``).

A component that cannot be computed (schema coverage before any ``kb validate``) is left out and
the other weights are scaled up to sum to 1; the page says so. Grades: A >= 90, B >= 80,
C >= 70, D >= 60, else F. Each build made with a writable catalogue stores a snapshot in the
``health`` table (one per run), from which the page draws the score's trend.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from kb import charts
from kb.catalogue import SHOWN_FINDINGS
from kb.findings import rank_sql, severity_sql
from kb.types import SEVERITIES

if TYPE_CHECKING:  # pragma: no cover
    from kb.catalogue import Catalogue
    from kb.settings import Settings

__all__ = ["build_report", "render_html", "health_score", "WEIGHTS"]

WEIGHTS: dict[str, float] = {
    "clean_files": 0.45,
    "unique_data": 0.20,
    "consistent_environments": 0.20,
    "schema_coverage": 0.15,
}
LABELS = {
    "clean_files": "Files without findings",
    "unique_data": "Data not duplicated",
    "consistent_environments": "Environments consistent",
    "schema_coverage": "Files with a schema checked against it",
}
_GRADES = ((90, "A"), (80, "B"), (70, "C"), (60, "D"), (0, "F"))


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def grade(score: float) -> str:
    return next(g for floor, g in _GRADES if score >= floor)


def health_score(values: dict[str, float | None]) -> dict[str, Any]:
    """The score from component shares (None: unknown, left out); see the module docstring."""
    known = {k: v for k, v in values.items() if v is not None and k in WEIGHTS}
    total_w = sum(WEIGHTS[k] for k in known) or 1.0
    components = []
    for k, w in WEIGHTS.items():
        v = values.get(k)
        eff = w / total_w if v is not None else 0.0
        components.append(
            {
                "name": k,
                "label": LABELS[k],
                "value": None if v is None else round(v, 4),
                "weight": w,
                "effective_weight": round(eff, 4),
                "points": None if v is None else round(100 * eff * v, 2),
            }
        )
    score = round(sum(100 * (WEIGHTS[k] / total_w) * v for k, v in known.items()), 1)
    return {
        "value": score,
        "grade": grade(score),
        "components": components,
        "left_out": [k for k in WEIGHTS if k not in known],
        "formula": "score = 100 × Σ weight × value over the known components, weights scaled to sum to 1",
    }


# ---------------------------------------------------------------------------------------------
# The numbers
# ---------------------------------------------------------------------------------------------


def _folder(path: str, depth: int = 2) -> str:
    parts = path.split("/")[:-1]
    return "/".join(parts[:depth]) if parts else "(root)"


def _validation_state(catalogue: Catalogue) -> str:
    stale = catalogue.get_meta("validation_stale")
    if stale is None and catalogue.get_meta("validate_seconds") is None:
        return "never"
    return "stale" if stale == "true" else "fresh"


def build_report(
    catalogue: Catalogue,
    settings: Settings,
    *,
    validate: bool = False,
    record: bool = False,
    graph: Any = None,
    recent: int = 50,
) -> dict[str, Any]:
    """Everything the report shows, as plain data (``kb report --json``).

    ``validate`` runs ``kb validate`` first when its results are missing or stale (this writes
    findings and references); ``record`` stores this build's snapshot in ``health``; ``graph``
    is a ready dependency graph (the API caches one per catalogue generation).
    """

    t0 = time.perf_counter()
    settings = settings.with_root_of(catalogue)
    state = _validation_state(catalogue)
    ran_validation = False
    if validate and state != "fresh" and not catalogue.read_only:
        from kb.graph.rules import validate as run_validate

        run_validate(catalogue, settings)
        state, ran_validation = "fresh", True
    st = catalogue.stats()
    files = int(st["files"])
    report: dict[str, Any] = {
        "generated_at": _utcnow().isoformat(timespec="seconds") + "Z",
        "kb": {
            "db": str(st["db"]),
            "root": st["root"],
            "files": files,
            "records": int(st["records"]),
            "bytes": int(st["bytes"]),
            "files_by_format": st["files_by_format"],
            "last_run": st["last_run"],
        },
        "validation": {
            "state": state,
            "ran_now": ran_validation,
            "seconds": _float(catalogue.get_meta("validate_seconds")),
        },
    }
    timings: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        t = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t, 3)
        return out

    report["findings"] = timed("findings", lambda: _findings(catalogue))
    report["duplicates"] = timed("duplicates", lambda: _duplicates(catalogue, settings))
    report["drift"] = timed("drift", lambda: _drift(catalogue, settings))
    report["schemas"] = _schemas(catalogue, state)
    report["graph"] = timed("graph", lambda: _graph(catalogue, settings, graph))
    report["changes"] = timed("changes", lambda: _changes(catalogue, recent))
    f, d, dr, sc = report["findings"], report["duplicates"], report["drift"], report["schemas"]
    values = {
        "clean_files": (1 - (f["files_with_errors"] + 0.5 * f["files_with_warnings_only"]) / files) if files else None,
        "unique_data": 1 - d["duplication_ratio"] if d["leaf_values"] else None,
        "consistent_environments": (1 - dr["drifting_keys"] / dr["keys"]) if dr["keys"] else 1.0,
        "schema_coverage": _schema_share(sc),
    }
    report["score"] = health_score(values)
    _earn_back(report["score"], f, d, dr, sc, files)
    snapshot = _snapshot(report)
    report["trends"] = timed("trends", lambda: _trends(catalogue, snapshot, record))
    report["timings"] = timings
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def _schema_share(sc: dict[str, Any] | None) -> float | None:
    """Files checked against their schema / files that have or declare one (None: no such file)."""
    if not sc:
        return None
    due = int(sc.get("with_schema", 0)) + int(sc.get("declared_unresolved", 0))
    return int(sc.get("validated", 0)) / due if due else None


def _earn_back(
    score: dict[str, Any],
    f: dict[str, Any],
    d: dict[str, Any],
    dr: dict[str, Any],
    sc: dict[str, Any] | None,
    files: int,
) -> None:
    """Each component's lost points and how to earn them back, in the user's terms."""
    for c in score["components"]:
        v, eff = c["value"], c["effective_weight"]
        c["lost"] = None if v is None else round(100 * eff * (1 - v), 2)
        k = c["name"]
        if k == "clean_files":
            per = 100 * eff / files if files else 0.0
            c["how"] = (
                f"Fix the errors in {f['files_with_errors']} file(s) (+{per:.2f} each) and the warnings in "
                f"{f['files_with_warnings_only']} more (+{per / 2:.2f} each): `kb findings --severity error`."
            )
        elif k == "unique_data":
            c["how"] = (
                f"Fold the {d.get('lines_saved', 0)} duplicated lines into shared files or anchors: "
                "`kb duplicates --kind block --kind canonical`."
            )
        elif k == "consistent_environments":
            c["how"] = (
                f"Add the {dr['missing']} key(s) missing from some environments and align the {dr['differing']} "
                "that differ, or declare the intended ones in the `drift_ignore` setting "
                f"({dr.get('intended', 0)} declared): `kb drift`."
            )
        else:
            due = 0 if not sc else int(sc.get("with_schema", 0)) + int(sc.get("declared_unresolved", 0))
            left = 0 if not sc else due - int(sc.get("validated", 0))
            c["how"] = (
                "Nothing to earn: no file has or declares a JSON Schema (files nobody publishes a schema for "
                "cost nothing)."
                if not due
                else f"Make the {left} file(s) whose schema could not be used checkable (a missing schema-map "
                "target, a $schema or $ref that needs the network: vendor it, or map it with `schema_map`); see "
                "the notes of `kb validate`."
            )


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


def _findings(catalogue: Catalogue) -> dict[str, Any]:
    sev_sql, rank = severity_sql(), rank_sql()
    by_rule = catalogue.query_dicts(
        f"SELECT rule, severity, count(*) AS count, count(DISTINCT path) AS files "
        f"FROM (SELECT rule, {sev_sql} AS severity, path FROM {SHOWN_FINDINGS}) GROUP BY 1, 2 "
        f"ORDER BY {rank}, count DESC, rule"
    )
    sev = dict.fromkeys(SEVERITIES, 0)
    for r in by_rule:
        sev[r["severity"]] = sev.get(r["severity"], 0) + int(r["count"])
    worst = catalogue.query(
        f"SELECT path, min({rank}) FROM {SHOWN_FINDINGS} WHERE path IS NOT NULL AND path <> '' GROUP BY 1"
    )
    per_folder: dict[str, Counter[str]] = defaultdict(Counter)
    for path, severity, n in catalogue.query(
        f"SELECT path, {sev_sql}, count(*) FROM {SHOWN_FINDINGS} WHERE path IS NOT NULL GROUP BY 1, 2"
    ):
        per_folder[_folder(path or "")][severity] += int(n)
    folders = sorted(
        per_folder.items(), key=lambda kv: (-kv[1]["error"], -kv[1]["warning"], -sum(kv[1].values()), kv[0])
    )
    return {
        "total": sum(sev.values()),
        "by_severity": sev,
        "by_rule": [{**r, "count": int(r["count"]), "files": int(r["files"])} for r in by_rule],
        "by_folder": [
            {"folder": k, **{s: int(c[s]) for s in SEVERITIES}, "total": int(sum(c.values()))} for k, c in folders[:15]
        ],
        "folders_with_findings": len(per_folder),
        "files_with_errors": sum(1 for _, w in worst if w == 0),
        "files_with_warnings_only": sum(1 for _, w in worst if w == 1),
    }


def _duplicates(catalogue: Catalogue, settings: Settings) -> dict[str, Any]:
    from kb.duplicates import duplication_summary, find_duplicates

    groups = find_duplicates(catalogue, settings, kinds=["exact", "canonical", "block"])
    summary = duplication_summary(catalogue, groups)
    blocks = sorted((g for g in groups if g.kind == "block"), key=lambda g: (-g.lines_saved, -len(g.members)))
    largest = [
        {
            "kind": g.kind,
            "lines_saved": g.lines_saved,
            "copies": len(g.members),
            "key_path": g.members[0].key_path,
            "members": [
                {"path": m.path, "key_path": m.key_path, "line_start": m.line_start, "line_end": m.line_end}
                for m in g.members[:6]
            ],
        }
        for g in blocks[:10]
    ]
    files = [
        {
            "kind": g.kind,
            "lines_saved": g.lines_saved,
            "copies": len(g.members),
            "paths": [m.path for m in g.members[:6]],
        }
        for g in sorted((g for g in groups if g.kind in ("exact", "canonical")), key=lambda g: -g.lines_saved)[:5]
    ]
    return {
        "duplication_ratio": summary["duplication_ratio"],
        "leaf_values": summary["leaf_values"],
        "duplicated_leaf_values": summary["duplicated_leaf_values"],
        "groups_by_kind": {k: summary["groups_by_kind"][k] for k in ("exact", "canonical", "block")},
        "lines_saved": summary["lines_saved"],
        "largest_blocks": largest,
        "duplicate_files": files,
    }


def _drift(catalogue: Catalogue, settings: Settings) -> dict[str, Any]:
    from kb.drift import find_drift

    declared: list[int] = []
    groups = find_drift(catalogue, settings, declared=declared)
    keys: dict[int, int] = {}
    if groups:
        gid, paths = [], []
        for i, g in enumerate(groups):
            for p in g.files:
                gid.append(i)
                paths.append(p)
        keys = {
            int(g): int(n)
            for g, n in catalogue.query(
                "SELECT g, count(DISTINCT key_path) FROM records JOIN "
                "(SELECT unnest(?) AS path, unnest(?) AS g) t USING (path) GROUP BY g",
                [paths, gid],
            )
        }
    rows: list[dict[str, Any]] = []
    for i, g in enumerate(groups):
        n_keys = max(keys.get(i, 0), len(g.missing) + len(g.differing))
        rows.append(
            {
                "folder": _common_folder(g.files),
                "files": g.files,
                "file_count": len(g.files),
                "keys": n_keys,
                "missing": len(g.missing),
                "differing": len(g.differing),
                "examples": [m.key_path for m in g.missing[:3]] + [d.key_path for d in g.differing[:3]],
            }
        )
    rows.sort(key=lambda r: (-(r["missing"] + r["differing"]), r["folder"]))
    return {
        "groups": len(groups),
        "keys": sum(r["keys"] for r in rows),
        "drifting_keys": sum(r["missing"] + r["differing"] for r in rows),
        "missing": sum(r["missing"] for r in rows),
        "differing": sum(r["differing"] for r in rows),
        "intended": len(declared),
        "by_group": rows[:20],
    }


def _common_folder(paths: list[str]) -> str:
    import posixpath

    if not paths:
        return ""
    common = posixpath.commonpath(paths) if len(paths) > 1 else posixpath.dirname(paths[0])
    if common in paths:
        common = posixpath.dirname(common)
    return common or "(root)"


def _schemas(catalogue: Catalogue, state: str) -> dict[str, Any] | None:
    raw = catalogue.get_meta("schema_coverage")
    if state == "never" or not raw:
        return None
    try:
        cov = json.loads(raw)
    except ValueError:
        return None
    if not cov:
        return None
    cov["stale"] = state == "stale"
    return cov


def _graph(catalogue: Catalogue, settings: Settings, g: Any) -> dict[str, Any]:
    from kb.graph.queries import stats

    if g is None:
        from kb.graph.build import build_graph

        g = build_graph(catalogue, settings)
    s = stats(g)
    return {
        k: s[k]
        for k in (
            "files",
            "edges",
            "references",
            "broken_references",
            "components",
            "file_cycles",
            "isolated_files",
            "edges_by_kind",
            "most_depended_on",
        )
    }


def _changes(catalogue: Catalogue, recent: int) -> dict[str, Any]:
    from kb.changelog import has_changes, query_changes

    if not has_changes(catalogue):
        return {"total": 0, "recent": [], "by_run": [], "by_source": {}}
    total, rows = query_changes(catalogue, limit=recent)
    by_run: dict[int, dict[str, Any]] = {}
    for run_id, change, n in catalogue.query(
        "SELECT run_id, change, count(*) FROM changes WHERE run_id IN "
        "(SELECT DISTINCT run_id FROM changes ORDER BY run_id DESC LIMIT 30) GROUP BY 1, 2 ORDER BY 1"
    ):
        by_run.setdefault(int(run_id), {"run_id": int(run_id)})[change] = int(n)
    by_source = dict(catalogue.query("SELECT source, count(*) FROM changes GROUP BY 1 ORDER BY 1"))
    return {
        "total": total,
        "recent": [r.model_dump(mode="json") for r in rows],
        "by_run": list(by_run.values()),
        "by_source": {k: int(v) for k, v in by_source.items()},
    }


def _snapshot(report: dict[str, Any]) -> dict[str, Any]:
    sc = report["schemas"]
    comp = {c["name"]: c["value"] for c in report["score"]["components"]}
    last = report["kb"]["last_run"] or {}
    return {
        "run_id": int(last.get("id") or 0),
        "built_at": _utcnow(),
        "score": report["score"]["value"],
        "files": report["kb"]["files"],
        "errors": report["findings"]["by_severity"].get("error", 0),
        "warnings": report["findings"]["by_severity"].get("warning", 0),
        "duplication_ratio": report["duplicates"]["duplication_ratio"],
        "drift_keys": report["drift"]["drifting_keys"],
        "schema_coverage": comp.get("schema_coverage") if sc else None,
    }


def _trends(catalogue: Catalogue, snap: dict[str, Any], record: bool) -> dict[str, Any]:
    if record and not catalogue.read_only and snap["run_id"]:
        row = (
            snap["run_id"],
            snap["built_at"],
            snap["score"],
            snap["files"],
            snap["errors"],
            snap["warnings"],
            snap["duplication_ratio"],
            snap["drift_keys"],
            snap["schema_coverage"],
            json.dumps({}),
        )
        with catalogue.transaction() as con:
            con.execute("DELETE FROM health WHERE run_id = ?", [snap["run_id"]])
            catalogue.insert_rows("health", [row], con)
    health = []
    if "health" in catalogue.tables():
        health = catalogue.query_dicts(
            "SELECT run_id, strftime(built_at, '%Y-%m-%d %H:%M') AS built_at, score, files, errors, warnings, "
            "duplication_ratio, drift_keys, schema_coverage FROM health ORDER BY run_id, built_at"
        )
    if not any(h["run_id"] == snap["run_id"] for h in health):
        health.append({**snap, "built_at": snap["built_at"].strftime("%Y-%m-%d %H:%M")})
    health = health[-60:]
    runs = catalogue.query_dicts(
        "SELECT id AS run_id, strftime(started_at, '%Y-%m-%d %H:%M') AS started_at, status, files_seen AS files, "
        "added, changed, removed, round(seconds, 2) AS seconds FROM runs "
        "WHERE status IN ('complete', 'interrupted') ORDER BY id DESC LIMIT 60"
    )
    runs.reverse()
    return {"health": health, "runs": runs}


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

_CSS = """
:root { --fg:#1f2933; --muted:#5f6b7a; --line:#e3e7ec; --card:#fff; --bg:#f5f7fa; --accent:#2f5fa7; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1f2933; color:#fff; padding:18px 28px; }
header h1 { margin:0 0 4px; font-size:22px; }
header p { margin:0; color:#c6cfd9; }
main { padding:20px 28px 40px; display:grid; grid-template-columns:repeat(auto-fill,minmax(560px,1fr)); gap:18px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 18px; min-width:0; }
section.wide { grid-column:1/-1; }
h2 { font-size:16px; margin:0 0 10px; }
h3 { font-size:13px; margin:14px 0 6px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
.kpis { display:flex; flex-wrap:wrap; gap:10px; margin:6px 0 10px; }
.kpi { border:1px solid var(--line); border-radius:6px; padding:6px 12px; min-width:110px; }
.kpi b { display:block; font-size:20px; }
.kpi span { color:var(--muted); font-size:12px; }
.score { display:flex; gap:18px; align-items:flex-start; flex-wrap:wrap; }
svg.chart { display:block; max-width:100%; height:auto; margin:4px 0; }
.score svg.chart[data-chart="score"] { width:160px; flex:none; }
.score .explain { flex:1; min-width:280px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; cursor:pointer; user-select:none; }
th[data-sort]::after { content:" \\2195"; color:#b0b8c2; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; word-break:break-all; }
.muted { color:var(--muted); }
.note { background:#fff8e1; border:1px solid #f0d98c; border-radius:6px; padding:6px 10px; margin:8px 0; }
.empty { color:var(--muted); font-style:italic; }
.legend span { margin-right:14px; font-size:12px; color:var(--muted); }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; vertical-align:middle; }
.chg { font-weight:600; }
.chg.added { color:#2e9058; } .chg.removed { color:#c93c3c; } .chg.changed { color:#3f7fc4; }
.chg.moved { color:#8a63c4; } .chg.broken { color:#d99a00; }
input[type=search] { width:100%; max-width:360px; padding:5px 8px; border:1px solid var(--line); border-radius:5px; }
footer { padding:0 28px 30px; color:var(--muted); font-size:12px; }
@media print { body { background:#fff; } main { display:block; } section { break-inside:avoid; margin-bottom:12px; } }
"""

# Sort tables by a header click; filter the recent changes. Nothing else, nothing remote.
_JS = """
(function () {
  'use strict';
  document.querySelectorAll('table.sortable th[data-sort]').forEach(function (th) {
    th.addEventListener('click', function () {
      var table = th.closest('table'), body = table.tBodies[0], idx = th.cellIndex;
      var num = th.dataset.sort === 'num', asc = th.dataset.dir !== 'asc';
      th.dataset.dir = asc ? 'asc' : 'desc';
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[idx].dataset.v || a.cells[idx].textContent, y = b.cells[idx].dataset.v || b.cells[idx].textContent;
        var c = num ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  var box = document.getElementById('changes-filter');
  if (box) {
    box.addEventListener('input', function () {
      var q = box.value.toLowerCase();
      document.querySelectorAll('#changes-table tbody tr').forEach(function (tr) {
        tr.hidden = q !== '' && tr.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  }
  document.body.dataset.ready = 'true';
})();
"""


def _e(v: Any) -> str:
    return escape("" if v is None else str(v))


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _kpi(value: Any, label: str) -> str:
    return f'<div class="kpi"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _table(head: list[tuple[str, str]], rows: list[list[tuple[str, Any]]], *, tid: str = "") -> str:
    """``head`` is (title, kind) with kind '' or 'num'; a cell is (html, sort value or None)."""
    ths = "".join(f'<th data-sort="{k or "text"}" class="{"num" if k == "num" else ""}">{_e(t)}</th>' for t, k in head)
    body = []
    for row in rows:
        tds = []
        for (html, v), (_, k) in zip(row, head):
            sv = f' data-v="{_e(v)}"' if v is not None else ""
            tds.append(f'<td class="{"num" if k == "num" else ""}"{sv}>{html}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    idattr = f' id="{tid}"' if tid else ""
    return f'<table class="sortable"{idattr}><thead><tr>{ths}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _score_color(score: float) -> str:
    return "#2e9058" if score >= 80 else "#d99a00" if score >= 60 else "#c93c3c"


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (no network needed to view it)."""
    kb, score = report["kb"], report["score"]
    sections = [
        _section_score(report),
        _section_findings(report),
        _section_duplicates(report),
        _section_drift(report),
        _section_schemas(report),
        _section_graph(report),
        _section_trends(report),
        _section_changes(report),
    ]
    # Embedded for tools: every '<', '>' and '&' escaped, so no text of the tree can close the tag.
    data = (
        json.dumps(report, default=str, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    root = kb.get("root") or kb.get("db")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>kb health report — {_e(root)}</title><style>{_CSS}</style></head>"
        f'<body data-score="{score["value"]}">'
        f"<header><h1>Configuration health: {score['value']:.1f}/100 (grade {_e(score['grade'])})</h1>"
        f"<p>{_e(root)} · {kb['files']:,} files · {kb['records']:,} values · generated "
        f"{_e(report['generated_at'])}</p></header>"
        f"<main>{''.join(sections)}</main>"
        f"<footer>kb health report. The numbers behind this page: <code>kb report --json</code>, or the JSON "
        f"embedded below (<code>#kb-report-data</code>). Built in {report['seconds']:.2f} s.</footer>"
        f'<script type="application/json" id="kb-report-data">{data}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )


def _section_score(r: dict[str, Any]) -> str:
    s = r["score"]
    rows = []
    for c in s["components"]:
        rows.append(
            [
                (_e(c["label"]) + f' <span class="muted mono">{_e(c["name"])}</span>', c["label"]),
                (_pct(c["value"]), c["value"]),
                (f"{c['weight']:.2f}", c["weight"]),
                ("—" if c["points"] is None else f"{c['points']:.1f}", c["points"]),
                ("—" if c.get("lost") is None else f"{c['lost']:.1f}", c.get("lost")),
                (_e(c.get("how", "")), c.get("how", "")),
            ]
        )
    bars = charts.hbar(
        "components",
        "score components, share from 0 to 100%",
        [(c["label"], c["value"], _score_color(100 * c["value"])) for c in s["components"] if c["value"] is not None],
        max_value=1.0,
        percent=True,
    )
    notes = []
    if s["left_out"]:
        notes.append(
            "Left out (not known yet): "
            + ", ".join(LABELS[k] for k in s["left_out"])
            + "; the other weights are scaled up. Run <code>kb validate</code> to know schema coverage."
        )
    v = r["validation"]
    if v["state"] == "stale":
        notes.append(
            "Validation results are older than the last ingest: run <code>kb validate</code> (or "
            "<code>kb report</code>, which validates when needed) for current findings."
        )
    elif v["state"] == "never":
        notes.append(
            "Validation has not run: references, variables and schemas are not checked yet. Run "
            "<code>kb validate</code>."
        )
    note_html = "".join(f'<p class="note">{n}</p>' for n in notes)
    return (
        '<section class="wide" id="score"><h2>Health score</h2><div class="score">'
        + charts.gauge(
            "score", f"health score {s['value']:.1f} of 100", s["value"], s["grade"], _score_color(s["value"])
        )
        + '<div class="explain">'
        + "<p>The score is a weighted mean of four shares (each 0–100%). A component that cannot be computed "
        "yet is left out and the other weights scaled to sum to 1.</p>"
        + _table(
            [
                ("component", ""),
                ("value", "num"),
                ("weight", "num"),
                ("points", "num"),
                ("lost", "num"),
                ("how to earn them back", ""),
            ],
            rows,
        )
        + f'<p class="muted">{_e(s["formula"])}. Grades: A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, else F.</p>'
        + note_html
        + "</div></div>"
        + bars
        + "</section>"
    )


def _section_findings(r: dict[str, Any]) -> str:
    f = r["findings"]
    sev = f["by_severity"]
    kpis = "".join(_kpi(f"{sev.get(s, 0):,}", s + "s") for s in SEVERITIES)
    kpis += _kpi(f"{f['files_with_errors']:,}", "files with errors")
    by_rule = charts.hbar(
        "findings-by-rule",
        "findings by rule",
        [
            (f"{x['rule']} ({x['severity']})", x["count"], charts.COLORS.get(x["severity"], "#888"))
            for x in f["by_rule"][:15]
        ],
    )
    by_folder = charts.stacked_hbar(
        "findings-by-folder",
        "findings by folder and severity",
        [(x["folder"], [(s, x[s]) for s in SEVERITIES]) for x in f["by_folder"]],
    )
    if not f["by_rule"]:
        by_rule = charts.empty("No findings: nothing to fix.")
        by_folder = ""
    return (
        '<section id="findings"><h2>Findings</h2>'
        f'<div class="kpis">{kpis}</div>'
        f"<h3>By rule</h3>{by_rule}<h3>By folder (worst first)</h3>{charts.legend(SEVERITIES)}{by_folder}"
        "</section>"
    )


def _section_duplicates(r: dict[str, Any]) -> str:
    d = r["duplicates"]
    ratio = d["duplication_ratio"]
    kpis = (
        _kpi(f"{ratio * 100:.1f}%", "duplication ratio")
        + _kpi(f"{d['duplicated_leaf_values']:,}", "values in copies")
        + _kpi(f"{d['lines_saved']:,}", "lines folding would save")
        + "".join(_kpi(f"{n:,}", f"{k} groups") for k, n in d["groups_by_kind"].items())
    )
    share = charts.stacked_hbar(
        "duplication",
        "leaf values: in removable copies vs unique",
        [
            (
                "leaf values",
                [
                    ("duplicated", d["duplicated_leaf_values"]),
                    ("unique", d["leaf_values"] - d["duplicated_leaf_values"]),
                ],
            )
        ],
    )
    blocks = charts.hbar(
        "largest-blocks",
        "largest repeated blocks by lines saved",
        [
            (f"{b['key_path'] or '(whole file)'} ×{b['copies']}", b["lines_saved"], charts.COLORS["duplicated"])
            for b in d["largest_blocks"]
        ],
        unit=" lines",
    )
    rows = [
        [
            (f"<code>{_e(b['key_path'] or '(whole file)')}</code>", b["key_path"] or ""),
            (f"{b['copies']}", b["copies"]),
            (f"{b['lines_saved']:,}", b["lines_saved"]),
            (
                "<br>".join(f"<code>{_e(m['path'])}:{_e(m['line_start'])}</code>" for m in b["members"][:3])
                + (f' <span class="muted">+{b["copies"] - 3} more</span>' if b["copies"] > 3 else ""),
                None,
            ),
        ]
        for b in d["largest_blocks"][:6]
    ]
    table = _table([("block", ""), ("copies", "num"), ("lines saved", "num"), ("where", "")], rows) if rows else ""
    if not d["largest_blocks"]:
        blocks = charts.empty("No repeated blocks.")
    return (
        '<section id="duplicates"><h2>Duplication</h2>'
        f'<div class="kpis">{kpis}</div>'
        f"{charts.legend(['duplicated', 'unique'])}{share}<h3>Largest repeated blocks</h3>{blocks}{table}</section>"
    )


def _section_drift(r: dict[str, Any]) -> str:
    d = r["drift"]
    if not d["groups"]:
        return (
            '<section id="drift"><h2>Drift between environments</h2>'
            + charts.empty(
                "No sibling environment files (.env.*, values-*.yaml, application-*.properties, "
                "config/{development,production}.*) found: nothing to compare."
            )
            + "</section>"
        )
    kpis = (
        _kpi(d["groups"], "environment groups")
        + _kpi(f"{d['drifting_keys']:,}", "drifting keys")
        + _kpi(f"{d['missing']:,}", "missing")
        + _kpi(f"{d['differing']:,}", "differing")
    )
    chart = charts.stacked_hbar(
        "drift",
        "drifting keys per environment group",
        [
            (f"{g['folder']} ({g['file_count']} files)", [("missing", g["missing"]), ("differing", g["differing"])])
            for g in d["by_group"]
        ],
    )
    rows = [
        [
            (f"<code>{_e(g['folder'])}</code>", g["folder"]),
            (str(g["file_count"]), g["file_count"]),
            (f"{g['keys']:,}", g["keys"]),
            (str(g["missing"]), g["missing"]),
            (str(g["differing"]), g["differing"]),
            (", ".join(f"<code>{_e(k)}</code>" for k in g["examples"]), None),
        ]
        for g in d["by_group"][:10]
    ]
    table = _table(
        [("group", ""), ("files", "num"), ("keys", "num"), ("missing", "num"), ("differing", "num"), ("e.g.", "")], rows
    )
    return (
        f'<section id="drift"><h2>Drift between environments</h2><div class="kpis">{kpis}</div>'
        f"{charts.legend(['missing', 'differing'])}{chart}{table}"
        '<p class="muted">Keys differing between environments are often intended (hosts, sizes); missing keys '
        "rarely are. <code>kb drift</code> lists them all.</p></section>"
    )


def _section_schemas(r: dict[str, Any]) -> str:
    sc = r["schemas"]
    if sc is None:
        return (
            '<section id="schemas"><h2>Schema coverage</h2>'
            + charts.empty("Not known yet: run kb validate (kb report does when it can write).")
            + "</section>"
        )
    ok = max(0, sc["validated"] - sc["violating"])
    not_checked = max(0, sc["with_schema"] - sc["validated"])
    kpis = (
        _kpi(f"{sc['structured_files']:,}", "JSON/YAML/TOML files")
        + _kpi(f"{sc['with_schema']:,}", "with a schema")
        + _kpi(f"{sc['validated']:,}", "validated")
        + _kpi(f"{sc['without_schema']:,}", "without a schema")
    )
    chart = charts.stacked_hbar(
        "schemas",
        "structured files by schema status",
        [
            (
                "files",
                [
                    ("valid", ok),
                    ("violating", sc["violating"]),
                    ("not checkable", not_checked),
                    ("no schema", sc["without_schema"]),
                ],
            )
        ],
    )
    src = ", ".join(f"{_e(k)}: {v:,}" for k, v in sorted(sc.get("by_source", {}).items()))
    stale = '<p class="note">From a validation older than the last ingest.</p>' if sc.get("stale") else ""
    return (
        f'<section id="schemas"><h2>Schema coverage</h2><div class="kpis">{kpis}</div>'
        f"{charts.legend(['valid', 'violating', 'not checkable', 'no schema'])}{chart}"
        f'<p class="muted">Schemas chosen by: {src or "—"}.</p>{stale}</section>'
    )


def _section_graph(r: dict[str, Any]) -> str:
    g = r["graph"]
    kpis = (
        _kpi(f"{g['files']:,}", "files")
        + _kpi(f"{g['edges']:,}", "dependencies")
        + _kpi(f"{g['broken_references']:,}", "broken references")
        + _kpi(g["file_cycles"], "cycles")
    )
    chart = charts.hbar(
        "most-depended-on",
        "most depended-on files",
        [(x["path"], x["dependents"], charts.COLORS["info"]) for x in g["most_depended_on"]],
        unit=" files",
    )
    if not g["most_depended_on"]:
        chart = charts.empty("No file references another.")
    return (
        f'<section id="graph"><h2>Most depended-on files</h2><div class="kpis">{kpis}</div>{chart}'
        '<p class="muted">A change to these reaches the most files: <code>kb graph impact FILE</code>.</p></section>'
    )


def _section_trends(r: dict[str, Any]) -> str:
    t = r["trends"]
    health, runs = t["health"], t["runs"]
    parts = ['<section class="wide" id="trends"><h2>Trends across runs</h2>']
    if len(health) > 1:
        parts.append(
            "<h3>Health score per run</h3>"
            + charts.lines(
                "score-trend",
                "health score per run",
                [f"run {h['run_id']}" for h in health],
                [("score", [h["score"] for h in health], charts.COLORS["ok"])],
                y_max=100,
            )
        )
        parts.append(
            "<h3>Findings per run</h3>"
            + charts.legend(["error", "warning"])
            + charts.lines(
                "findings-trend",
                "errors and warnings per run",
                [f"run {h['run_id']}" for h in health],
                [
                    ("errors", [h["errors"] for h in health], charts.COLORS["error"]),
                    ("warnings", [h["warnings"] for h in health], charts.COLORS["warning"]),
                ],
            )
        )
    else:
        parts.append(
            charts.empty(
                "The score's trend appears once reports were built after two or more runs "
                "(each kb report stores one snapshot per run)."
            )
        )
    if len(runs) > 1:
        parts.append(
            "<h3>Files per run</h3>"
            + charts.lines(
                "files-trend",
                "files per run",
                [f"run {x['run_id']}" for x in runs],
                [("files", [x["files"] for x in runs], charts.COLORS["info"])],
            )
        )
        parts.append(
            "<h3>Files added, changed, removed per run</h3>"
            + charts.legend(["added", "changed", "removed"])
            + charts.stacked_columns(
                "runs",
                "files added, changed and removed per run",
                [
                    (
                        f"run {x['run_id']}",
                        [("added", x["added"] or 0), ("changed", x["changed"] or 0), ("removed", x["removed"] or 0)],
                    )
                    for x in runs
                ],
            )
        )
    else:
        parts.append(charts.empty("One ingest run so far: run trends appear after the next one."))
    parts.append("</section>")
    return "".join(parts)


def _value(v: Any) -> str:
    if v is None:
        return '<span class="muted">∅</span>'
    s = str(v)
    return f"<code>{_e(s if len(s) <= 80 else s[:77] + '…')}</code>"


def _section_changes(r: dict[str, Any]) -> str:
    c = r["changes"]
    parts = ['<section class="wide" id="changes"><h2>Recent changes</h2>']
    if not c["total"]:
        parts.append(
            charts.empty(
                "No key-level changes recorded yet: the first ingest is the baseline. Changes "
                "appear after the next ingest, or replay history with kb ingest PATH "
                "--git-history 100."
            )
        )
        parts.append("</section>")
        return "".join(parts)
    kinds = ["added", "changed", "removed", "moved", "broken"]
    total = f"{c['total']:,}"
    parts.append(
        f'<div class="kpis">{_kpi(total, "key changes recorded")}'
        + "".join(_kpi(f"{v:,}", f"from {k}") for k, v in c["by_source"].items())
        + "</div>"
    )
    if c["by_run"]:
        parts.append(
            "<h3>Key changes per run</h3>"
            + charts.legend(kinds)
            + charts.stacked_columns(
                "changes-per-run",
                "key changes per run",
                [(f"run {x['run_id']}", [(k, x.get(k, 0)) for k in kinds]) for x in c["by_run"]],
            )
        )
    rows = []
    for x in c["recent"]:
        where = f"<code>{_e(x['path'])}</code>" + (f":{_e(x['line'])}" if x["line"] else "")
        if x["old_path"]:
            where += f' <span class="muted">from <code>{_e(x["old_path"])}</code></span>'
        who = _e(x["author"]) + (
            f' <span class="mono muted">{_e((x["commit"] or "")[:10])}</span>' if x["commit"] else ""
        )
        rows.append(
            [
                (_e(str(x["changed_at"])[:16].replace("T", " ")), str(x["changed_at"])),
                (f'<span class="chg {_e(x["change"])}">{_e(x["change"])}</span>', x["change"]),
                (where, x["path"]),
                (f"<code>{_e(x['key_path'] or '')}</code>", x["key_path"] or ""),
                (
                    _value(x["old_value"]) + " → " + _value(x["new_value"])
                    if x["change"] == "changed"
                    else _value(x["new_value"] if x["change"] == "added" else x["old_value"]),
                    None,
                ),
                (who or '<span class="muted">—</span>', x["author"] or ""),
            ]
        )
    parts.append(
        f'<h3>Latest {len(rows)}</h3><input type="search" id="changes-filter" '
        'placeholder="Filter: a path, key, author…" aria-label="filter recent changes">'
    )
    parts.append(
        _table(
            [("when (UTC)", ""), ("change", ""), ("file", ""), ("key", ""), ("value", ""), ("who", "")],
            rows,
            tid="changes-table",
        )
    )
    parts.append(
        '<p class="muted"><code>kb changes</code> lists them all; <code>kb blame FILE KEY</code> gives one '
        "key's history.</p></section>"
    )
    return "".join(parts)
