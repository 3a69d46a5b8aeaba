"""The built-in parsers, one module per format.

Importing this package registers each of them through :func:`ingest.parsers.base.register`,
exactly as an outside plugin registers its own. Format names: ``json``, ``yaml``, ``toml``,
``ini``, ``dotenv``, ``properties``, ``markdown``, ``dockerfile``, ``helm-template``, ``text``.
"""

from ingest.parsers import (  # noqa: F401  (each module ends with register(...))
    dockerfile_parser,
    dotenv_parser,
    helm_parser,
    ini_parser,
    json_parser,
    markdown_parser,
    properties_parser,
    text_parser,
    toml_parser,
    yaml_parser,
)
from ingest.parsers.base import Limits, format_for, parse_text, parser_by_name, register, registry

__all__ = ["Limits", "format_for", "parse_text", "parser_by_name", "register", "registry"]
