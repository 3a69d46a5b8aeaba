"""``kb mcp``: the knowledge base as a Model Context Protocol server for coding assistants.

:mod:`kb.api.mcp.server` holds the tools and the server (the only import of the ``mcp`` SDK);
:mod:`kb.api.mcp.schemas` their results, built from the HTTP API's envelopes.
"""

from kb.api.mcp.server import MAX_CHARS, TOOLS, KBTools, create_server

__all__ = ["KBTools", "create_server", "MAX_CHARS", "TOOLS"]
