"""kb's HTTP API: ``api.app.create_app(settings)`` returns a Litestar app (``kb serve`` runs it).

Modules: ``app`` (the factory), ``service`` (stores, ingest worker, read views), ``routes/`` (one
module per area), ``errors`` (the JSON problem body), ``auth`` (bearer tokens), ``metrics``
(Prometheus text), ``timeout`` (the 503 after ``request_timeout``), ``watch`` (``--watch``),
``queries`` (paged catalogue reads), ``schemas`` (response envelopes), ``static/index.html`` (the
search page). Nothing here is imported by ``kb`` itself, so ``kb --help`` never loads Litestar.
"""
