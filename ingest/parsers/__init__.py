"""The built-in parsers, one module per format: every ``*_parser.py`` module of this package.

Importing this package imports each of them, and each registers itself through
:func:`kb.ingest.parsers.base.register`, exactly as an outside plugin registers its own: a new format
is one new module here (its traits declared on its parser, see :mod:`kb.formats`) plus its golden
cases under ``tests/golden/<format>/``. Format names: ``json``, ``yaml``, ``toml``, ``ini``,
``dotenv``, ``properties``, ``markdown``, ``dockerfile``, ``helm-template``, ``text``, ``hcl``.
"""

import importlib
import pkgutil

from kb.ingest.parsers.base import Limits, format_for, parse_text, parser_by_name, register, registry

__all__ = ["Limits", "format_for", "parse_text", "parser_by_name", "register", "registry"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_parser")):
    importlib.import_module(f"{__name__}.{_module}")
