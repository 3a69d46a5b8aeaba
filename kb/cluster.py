"""Building on a Ray cluster: the only module that imports ``ray`` (the optional ``ray`` extra).

``kb ingest TREE --ray ADDRESS`` (or ``KB_RAY_ADDRESS``) hands the two costly phases of a build to
Ray, and nothing else changes: the process that runs ``kb ingest`` stays the one writer, holds
``writer.lock``, writes every catalogue row, vector segment and Chroma record, and publishes
generations exactly as a local build does (:mod:`kb.generations`).

* **Parsing** (read, hash, parse, redact, chunk: :func:`kb.ingest.pipeline.process_file`) runs as Ray
  tasks, a batch of files each, through :meth:`Cluster.map`. Inside a task the files go through
  the same supervised worker as a local build (:func:`kb.ingest.workers.supervised_map`: the time
  budget, the memory bound, a crashing parser costs one file), so the findings are the same. A
  task whose worker dies (``kill -9``, a node lost) is retried by Ray; one that keeps dying is split
  into single files, and a file that still kills its worker becomes its ``internal-error`` finding,
  as locally.
* **Embedding** runs on actors (:class:`EncoderPool`), each holding one model, created by
  :func:`kb.embed.create_embedder` from the build's settings (so a vector has the identity it
  has locally); an actor asks for a GPU where the cluster has GPUs. The writer sends batches of
  texts in order and appends what comes back; an actor that dies is restarted by Ray (reloading
  its model) and its batch is sent again.

Ray Core, not Ray Data: measured by ``bench/ray_build.py --engine data`` on the same tree, Ray
Data's streaming executor costs seconds of start-up and converts every batch to Arrow and back,
while a parse result is a handful of small Python tuples the writer consumes at once; a bounded
window of tasks (two per CPU) keeps every worker busy with none of that (``docs/scaling.md``).

Every node needs kb (the same version) and the tree at the same path (shared storage, like the KB
directory of the many-replicas setup); a worker that cannot see the tree stops the build with a
message saying so, rather than cataloguing files as vanished.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kb.errors import ConfigError, DependencyError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from kb.settings import Settings

__all__ = ["Cluster", "EncoderPool", "RootNotVisibleError", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'kb[ray]'"
TASK_RETRIES = 2
"""Times Ray runs a task again after its worker died, before the batch is split into single files."""
ACTOR_RESTARTS = 3
"""Times Ray restarts an embedding actor that died (each restart loads the model again)."""


class RootNotVisibleError(Exception):
    """Raised inside a task whose node cannot see the tree being built (turned into a ConfigError)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise DependencyError(
            f"Building on a Ray cluster needs the ray extra: {INSTALL_HINT}. "
            "Or build on this machine: drop --ray (and unset KB_RAY_ADDRESS)."
        ) from exc
    return ray


class Cluster:
    """A connection to a Ray cluster, opened on first use and closed by :meth:`close`.

    ``address``: ``auto`` joins the cluster this machine belongs to (``ray start`` or
    ``RAY_ADDRESS``) and starts one here, with ``num_cpus`` CPUs (None: all), when there is none;
    ``local`` always starts one here; anything else (``host:6379``, ``ray://host:10001``) is
    passed to ``ray.init``. A process already connected (``ray.init`` called by a notebook or a
    test) keeps its connection, and :meth:`close` leaves it open.
    """

    def __init__(self, address: str, *, num_cpus: int | None = None) -> None:
        self.address = address.strip() or "auto"
        self.num_cpus = num_cpus
        self.embedder_choice = ""
        self._ray: Any = None
        self._owned = False

    def connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = _ray()
        if not ray.is_initialized():
            quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            try:
                if self.address == "local":
                    ray.init(num_cpus=self.num_cpus, **quiet)
                elif self.address == "auto":
                    try:
                        ray.init(address="auto", **quiet)
                    except ConnectionError:  # no cluster running on this machine: start one
                        ray.init(num_cpus=self.num_cpus, **quiet)
                else:
                    ray.init(address=self.address, **quiet)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"Cannot reach the Ray cluster at '{self.address}': {str(exc).splitlines()[0] if str(exc) else exc}. "
                    "Start one (`ray start --head` prints its address), pass its address with --ray "
                    "(or KB_RAY_ADDRESS), or use --ray auto to start one on this machine."
                ) from exc
            self._owned = True
        self._ray = ray
        return ray

    def resources(self) -> dict[str, float]:
        """The cluster's resources (``CPU``, ``GPU``, ...)."""
        return dict(self.connect().cluster_resources())

    def cpus(self) -> int:
        return max(1, int(self.resources().get("CPU", 1)))

    def describe(self) -> str:
        res = self.resources()
        nodes = len([n for n in self.connect().nodes() if n.get("Alive")])
        gpus = int(res.get("GPU", 0))
        return f"Ray: {nodes} node(s), {int(res.get('CPU', 0))} CPUs" + (f", {gpus} GPUs" if gpus else "")

    @property
    def describe_used(self) -> str:
        """What the build ran on (for the run's notes): the cluster, and the embedder of its actors."""
        where = self.describe() if self._ray is not None else f"Ray at {self.address}"
        return where + (f"; embedding: {self.embedder_choice}" if self.embedder_choice else "")

    def close(self) -> None:
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        self._ray = None
        self._owned = False

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tasks ----------------------------------------------------------------------------------

    def map(
        self,
        fn: Callable[..., list[Any]],
        items: Sequence[Any],
        *,
        args: tuple = (),
        batch_size: int,
        on_crash: Callable[[Any], Any],
        window: int | None = None,
    ) -> Iterator[Any]:
        """``fn(batch, *args)`` (a list with one result per item of ``batch``) for batches of
        ``items``, as Ray tasks of one CPU; yields the results as batches finish.

        At most ``window`` tasks (default: two per CPU) are out at once. A task whose worker dies
        is retried (:data:`TASK_RETRIES`); after that its batch is split into single items, and an
        item whose task still dies yields ``on_crash(item)``. :class:`RootNotVisibleError` raised
        by ``fn`` stops the map with a :class:`ConfigError`.
        """
        ray = self.connect()
        if not items:
            return
        remote = ray.remote(fn).options(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)
        shared = [ray.put(a) for a in args]  # sent once, not with every task
        window = window or 2 * self.cpus()
        todo: deque[list[Any]] = deque(
            list(items[s : s + batch_size]) for s in range(0, len(items), max(1, batch_size))
        )
        out: dict[Any, list[Any]] = {}
        try:
            while todo or out:
                while todo and len(out) < window:
                    batch = todo.popleft()
                    out[remote.remote(batch, *shared)] = batch
                ready, _ = ray.wait(list(out), num_returns=1)
                for ref in ready:
                    batch = out.pop(ref)
                    try:
                        results = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        if isinstance(exc.cause, RootNotVisibleError):
                            raise ConfigError(str(exc.cause)) from None
                        raise
                    except (
                        ray.exceptions.WorkerCrashedError,
                        ray.exceptions.ObjectLostError,
                        ray.exceptions.NodeDiedError,
                    ):
                        if len(batch) > 1:
                            todo.extendleft([item] for item in reversed(batch))
                        else:
                            yield on_crash(batch[0])
                        continue
                    yield from results
        finally:
            for ref in out:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    # -- actors ---------------------------------------------------------------------------------

    def encoder_pool(self, settings: Settings, *, actors: int | None = None) -> EncoderPool:
        pool = EncoderPool(self, settings, actors=actors)
        self.embedder_choice = pool.choice
        return pool


class _Encoder:
    """An embedding actor: one model, created from the build's settings."""

    def __init__(self, settings: Settings, threads: int) -> None:
        from kb.embed import create_embedder

        self.emb = create_embedder(settings, purpose="documents", threads=threads)

    def identity(self) -> dict[str, Any]:
        e = self.emb
        return {
            "name": e.name,
            "dim": e.dim,
            "backend": getattr(e, "backend", ""),
            "precision": getattr(e, "precision", ""),
            "choice": getattr(e, "choice", ""),
            "node": os.uname().nodename,
        }

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.emb.encode(texts)

    def pieces(self, texts: list[str]) -> np.ndarray:
        """Word pieces of each text where the embedder counts them (:meth:`kb.embed.OpenVinoEmbedder.pieces`),
        else characters: what a build orders its texts by."""
        from kb.embed import text_pieces

        return text_pieces(self.emb, texts)


class EncoderPool:
    """Embedding actors on the cluster, used like one embedder whose :meth:`encode_stream` takes
    many batches and yields their vectors in order.

    One actor per GPU where the cluster has GPUs (each asks for one); else one actor per node,
    pinned to it, asking for all its CPUs and running its model on that many threads (one model
    on N threads encodes faster than N one-thread models: ``bench/ray_build.py``, figures in
    docs/performance.md). ``actors`` overrides the count
    (then each asks for ``cpus // actors`` CPUs, unpinned). ``name``, ``dim``, ``backend`` and
    ``precision`` are those of the actors' embedders (the identity recorded with the vectors)."""

    min_slice = 16

    def __init__(self, cluster: Cluster, settings: Settings, *, actors: int | None = None) -> None:
        ray = cluster.connect()
        res = cluster.resources()
        gpus = int(res.get("GPU", 0)) if settings.device in ("auto", "cuda") else 0
        actor = ray.remote(_Encoder)
        restarts = {"max_restarts": ACTOR_RESTARTS, "max_task_retries": ACTOR_RESTARTS}

        def cls(**opts: Any) -> Any:
            return actor.options(**restarts, **opts)

        self._ray = ray
        if gpus:
            n = actors or gpus
            self.actors = [cls(num_gpus=1, num_cpus=1).remote(settings, 1) for _ in range(n)]
        elif actors:
            n, cpa = actors, max(1, cluster.cpus() // actors)
            self.actors = [cls(num_cpus=cpa).remote(settings, cpa) for _ in range(n)]
        else:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            nodes = [
                (node["NodeID"], int(node.get("Resources", {}).get("CPU", 0)))
                for node in ray.nodes()
                if node.get("Alive") and int(node.get("Resources", {}).get("CPU", 0)) > 0
            ]
            self.actors = [
                cls(num_cpus=cpus, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(
                    settings, cpus
                )
                for node_id, cpus in nodes
            ] or [cls(num_cpus=1).remote(settings, 1)]
            n = len(self.actors)
        ident = ray.get(self.actors[0].identity.remote())
        self.name: str = ident["name"]
        self.dim: int = int(ident["dim"])
        self.backend: str = ident["backend"]
        self.precision: str = ident["precision"]
        self.choice = f"{ident['choice']} on {n} Ray actor(s)" + (" with a GPU each" if gpus else "")

    def pieces(self, texts: list[str]) -> np.ndarray:
        """Word pieces of each text, counted by one actor (its embedder's tokenizer; characters for
        an embedder that does not count pieces): a build orders its texts by them, longest first."""
        return self._ray.get(self.actors[0].pieces.remote(texts))

    def encode(self, texts: list[str]) -> np.ndarray:
        """The vectors of ``texts`` in order: the list is dealt out to the actors like cards (one
        share each, of at least :attr:`min_slice` texts), so every share has long and short texts
        alike and no actor waits on another; the shares are encoded side by side."""
        import numpy as np

        n = max(1, min(len(self.actors), len(texts) // self.min_slice))
        if n == 1:
            return next(self.encode_stream([texts]))
        parts = [texts[i::n] for i in range(n)]
        out: np.ndarray | None = None
        for i, vecs in enumerate(self.encode_stream(parts)):
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=vecs.dtype)
            out[i::n] = vecs
        assert out is not None
        return out

    def encode_stream(self, batches: Sequence[list[str]]) -> Iterator[np.ndarray]:
        """The vectors of each batch, in order; two batches out per actor at a time."""
        ray = self._ray
        out: deque[Any] = deque()
        pending = iter(range(len(batches)))
        window = 2 * len(self.actors)

        def send(i: int) -> None:
            out.append(self.actors[i % len(self.actors)].encode.remote(batches[i]))

        for i in pending:
            send(i)
            if len(out) >= window:
                break
        while out:
            vecs = ray.get(out.popleft())
            nxt = next(pending, None)
            if nxt is not None:
                send(nxt)
            yield vecs

    def close(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):
                self._ray.kill(a)
        self.actors = []
