"""Reference extraction: catalogue rows in, :class:`Reference` rows out.

Ingest and graph talk through the catalogue: this package reads ``files``, ``records`` and
``documents`` (never the parsers) and finds, per format, every place where one file points at
another file, at a place inside a file, at a service, at a variable or at a cluster object:

==========================  =====================================================================
kind                        where it comes from
==========================  =====================================================================
``file``                    a path in a value (``"config": "features/analytics.json"``,
                            ``./templates/x.yml``, ``file:x.json``) ending in a config/doc suffix
``include``                 the same under an include-like key (``extends``, ``include``,
                            ``imports``, kustomize ``resources`` ...): these must not form cycles
``schema``                  ``$schema`` values and ``# yaml-language-server: $schema=`` modelines
``json-ref``                JSON Schema / OpenAPI ``$ref`` (the JSON pointer must exist)
``compose-*``               docker compose ``extends``, ``env_file``, ``depends_on``, bind-mount
                            sources, ``build.context``, ``dockerfile``, ``include``, config files
``variable``                ``${VAR}``, ``${VAR:?err}``, ``$VAR`` (compose) in compose, .env,
                            properties and YAML files
``markdown-link``           Markdown links and images to local files and ``#anchors``
``k8s-configmap``/``-secret``  ``configMapRef``, ``secretRef``, ``configMapKeyRef``, ... names
``helm-value``              ``.Values.a.b`` in chart templates, looked up in ``values.yaml``
==========================  =====================================================================

Strings that only look like paths are not references: URLs, MIME types, ``read/write``, dates,
globs, image names, cron lines, absolute host/container paths.

Each reference has a ``status``: ``ok`` (resolved), ``broken`` (points nowhere), ``undefined``
(a variable nobody defines), ``external`` (a URL, host path or remote that cannot be checked
offline) or ``optional`` (missing, but declared optional).

One module per source, each a function of explicit inputs that returns its references:
:mod:`~kb.graph.refs.compose`, :mod:`~kb.graph.refs.values` (paths, ``$ref``, ``$schema``, modelines),
:mod:`~kb.graph.refs.markdown`, :mod:`~kb.graph.refs.kubernetes`, :mod:`~kb.graph.refs.helm` and
:mod:`~kb.graph.refs.variables`; :mod:`~kb.graph.refs.extractor` runs them in order. Beside them:
:mod:`~kb.graph.refs.model` (the row), :mod:`~kb.graph.refs.corpus` (files, folders, documents, lines),
:mod:`~kb.graph.refs.paths` (path-likeness), :mod:`~kb.graph.refs.pointers` (JSON pointers, anchors) and
:mod:`~kb.graph.refs.schema_index` (schema URLs to files).
"""

from __future__ import annotations

from kb.graph.refs.corpus import Corpus, LineIndex, line_indexes
from kb.graph.refs.extractor import Progress, ReferenceExtractor, extract_references
from kb.graph.refs.markdown import loose
from kb.graph.refs.model import CYCLE_KINDS, KINDS, REFERENCE_COLUMNS, Reference, ReferenceSink, service_node
from kb.graph.refs.paths import looks_like_path
from kb.graph.refs.pointers import pointer_exists
from kb.graph.refs.schema_index import SchemaIndex, is_meta_schema_url
from kb.graph.refs.variables import VarUse, scan_variables

__all__ = [
    "Reference",
    "ReferenceSink",
    "REFERENCE_COLUMNS",
    "CYCLE_KINDS",
    "KINDS",
    "Corpus",
    "LineIndex",
    "line_indexes",
    "SchemaIndex",
    "is_meta_schema_url",
    "ReferenceExtractor",
    "Progress",
    "extract_references",
    "scan_variables",
    "VarUse",
    "looks_like_path",
    "pointer_exists",
    "service_node",
    "loose",
]
