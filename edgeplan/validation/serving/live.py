r"""A live speculative-serving cluster: one process per drafter and one for the verifier, driven over loopback.

The hub (the caller's process) drives CoSine's lock-step rounds: in round :math:`i` every drafter with
requests still drafting draws one token for each of them (one batched forward pass) and sends back the token
and the distribution it came from; then the verifier scores every batched request's context and drafts in one
batched forward pass (a request's drafts as a token tree, with tree attention), and the hub accepts or resamples with
:func:`~edgeplan.validation.serving.speculative.verify_tree` (one chain: the usual rule; several: a token tree).
Acceptance is therefore real: it is whatever the trained drafters and target do.

Messages are pickled over :mod:`multiprocessing.connection` sockets bound to 127.0.0.1. Every worker runs one
torch thread. Sequences are left-padded, and every forward pass recomputes the prefix (no K/V cache): these are
the costs that :func:`calibrate` measures and fits to the step model's timing functions
(:math:`a_j + b_j m` per draft round, :math:`v_0 + v_1 B + v_2 N + v_3 \sum n` per verification, a hop per
round).

Emulated devices (``LiveCluster(pace=...)``): drafters and verifier slower than this host, as edge nodes are. Each
command then carries the duration the paced timing functions give it, and the worker sleeps out the rest after
its real work (a draft round of :math:`m` requests: :math:`a_j + b_j m`; a verification: its :math:`V` less one
hop, the messages' own round trip). The step's durations then follow the device model whatever this shared
host's speed does, as long as the real work fits (:attr:`StepOutcome.overrun_s` says by how much it did not).
"""

from __future__ import annotations

import multiprocessing as mp
import secrets
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

import numpy as np

from edgeplan.formulations.serving.step import SpeculativeServing, verify_time
from edgeplan.validation.lm import LMConfig, MarkovCorpus, trained_lm
from edgeplan.validation.serving.tree import tree_distributions


@dataclass(frozen=True)
class ServingModels:
    """The target and one drafter per domain, trained here and cached (:func:`~edgeplan.validation.lm.trained_lm`).

    Attributes
    ----------
    corpus
        The domains' Markov source.
    target, drafter
        Their shapes and training runs.
    """

    corpus: MarkovCorpus = field(default_factory=lambda: MarkovCorpus(vocab=32, domains=2, seed=3))
    target: LMConfig = field(default_factory=lambda: LMConfig(n_layer=4, n_embd=64, steps=600, seed=1))
    drafter: LMConfig = field(default_factory=lambda: LMConfig(n_layer=1, n_embd=32, n_head=2, steps=400, seed=2))

    def load_target(self) -> Any:
        return trained_lm(self.corpus, self.target)

    def load_drafter(self, domain: int) -> Any:
        return trained_lm(self.corpus, self.drafter, domains=[domain])

    def prepare(self) -> None:
        """Train (or load) every model once, before worker processes start."""
        self.load_target()
        for d in range(self.corpus.domains):
            self.load_drafter(d)


def _batch(seqs: list[np.ndarray]) -> tuple[Any, Any, Any]:
    """Left-padded ids, attention mask and position ids of ``seqs``."""
    import torch

    n = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), n), dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, n - len(s):] = torch.as_tensor(s)
        mask[i, n - len(s):] = 1
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    return ids, mask, pos


def _last_distributions(model: Any, seqs: list[np.ndarray], last: list[int]) -> list[np.ndarray]:
    """Each sequence's next-token distributions at its last ``last[i]`` positions (temperature 1)."""
    import torch

    ids, mask, pos = _batch(seqs)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.double()
    probs = torch.softmax(logits, -1).numpy()
    return [probs[i, probs.shape[1] - k:] for i, k in enumerate(last)]


class Worker:
    """A drafter (``role`` = its domain) or the verifier (``role`` = -1): the commands the hub sends.

    Parameters
    ----------
    models, role, seed
        The models, which one this worker runs, and the seed of its sampler.
    """

    def __init__(self, models: ServingModels, role: int, seed: int) -> None:
        self.model = models.load_target() if role < 0 else models.load_drafter(role)
        self.rng = np.random.default_rng(seed)
        self.seqs: dict[int, np.ndarray] = {}

    def handle(self, cmd: str, arg: Any, pad_s: float = 0.0) -> tuple[Any, float]:
        """``(answer, seconds of real work)`` of one command: ``start`` (a drafter's contexts), ``round`` (one
        draft token per listed request) or ``verify`` (``[(context, chains)]``, a token tree per request -> per
        tree and chain its ``k + 1`` distributions, one pass with tree attention); the answer goes back no earlier
        than ``pad_s`` after the command came (an emulated device)."""
        t0 = time.perf_counter()
        out: Any = None
        if cmd == "start":
            self.seqs = {r: np.asarray(s, dtype=np.int64) for r, s in arg.items()}
        elif cmd == "round":
            dists = _last_distributions(self.model, [self.seqs[r] for r in arg], [1] * len(arg))
            out = {}
            for r, q in zip(arg, dists, strict=True):
                x = int(self.rng.choice(q.shape[1], p=q[0] / q[0].sum()))
                self.seqs[r] = np.append(self.seqs[r], x)
                out[r] = (x, q[0])
        else:
            out = tree_distributions(self.model, arg)
        work = time.perf_counter() - t0
        if pad_s > work:
            time.sleep(pad_s - work)
        return out, work


def _worker(port: int, key: bytes, models: ServingModels, role: int, seed: int) -> None:
    """A worker process: one torch thread, commands from the hub until ``stop``."""
    import torch

    torch.set_num_threads(1)
    worker = Worker(models, role, seed)
    conn = Client(("127.0.0.1", port), authkey=key)
    conn.send(role)
    while True:
        cmd, arg, *pad = conn.recv()
        if cmd == "stop":
            break
        conn.send(worker.handle(cmd, arg, *pad))
    conn.close()


class LiveCluster:
    """Drafter and verifier processes on loopback (a context manager).

    Parameters
    ----------
    models
        The models (trained or loaded before the processes start).
    seed
        Seeds of the workers' samplers.
    pace
        Emulated devices: the :class:`Timing` every command is padded to (module docstring); None: this host's
        own speed. It can be set later (:func:`calibrate` needs it None).
    """

    def __init__(self, models: ServingModels | None = None, seed: int = 0, pace: Timing | None = None) -> None:
        self.pace = pace
        self.models = models or ServingModels()
        self.models.prepare()
        key = secrets.token_bytes(16)
        self._listener = Listener(("127.0.0.1", 0), authkey=key)
        port = self._listener.address[1]
        ctx = mp.get_context("spawn")
        roles = [*range(self.models.corpus.domains), -1]
        self._procs = [ctx.Process(target=_worker, args=(port, key, self.models, r, seed + i), daemon=True)
                       for i, r in enumerate(roles)]
        for p in self._procs:
            p.start()
        self.conns: dict[int, Connection] = {}
        for _ in roles:
            conn = self._listener.accept()
            self.conns[conn.recv()] = conn

    @property
    def n_drafters(self) -> int:
        return self.models.corpus.domains

    def call(self, role: int, cmd: str, arg: Any, pad_s: float = 0.0) -> tuple[Any, float]:
        """``(answer, seconds of real work)`` of one command to one worker, answered no earlier than ``pad_s``.

        Parameters
        ----------
        role, cmd, arg, pad_s
            The worker (a drafter's domain, or -1: the verifier), the command and its argument, the paced duration.
        """
        self.conns[role].send((cmd, arg, pad_s))
        return self.conns[role].recv()

    def broadcast(self, calls: dict[int, tuple[Any, ...]]) -> dict[int, tuple[Any, float]]:
        """Send every call (``(cmd, arg)`` or ``(cmd, arg, pad_s)``) first, then collect the answers (the workers
        run in parallel)."""
        for role, call in calls.items():
            self.conns[role].send(call)
        return {role: self.conns[role].recv() for role in calls}

    def close(self) -> None:
        for conn in self.conns.values():
            try:
                conn.send(("stop", None))
                conn.close()
            except OSError:
                pass
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        self._listener.close()

    def __enter__(self) -> LiveCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class StepOutcome:
    """One executed step.

    Attributes
    ----------
    committed
        Tokens committed per batched request (accepted drafts plus the target's token).
    accepted
        Accepted drafts per batched request.
    wall_s, draft_s, verify_s
        The step's wall-clock time, its drafting rounds and its verification (hub to hub).
    overrun_s
        With a paced cluster, the most a command's real work ran past its paced duration (0: all fitted).
    """

    committed: dict[int, list[int]]
    accepted: dict[int, int]
    wall_s: float
    draft_s: float
    verify_s: float
    overrun_s: float = 0.0


def execute_step(cluster: LiveCluster, contexts: dict[int, np.ndarray], routes: dict[int, tuple[int, ...]],
                 lengths: dict[int, int], rng: np.random.Generator) -> StepOutcome:
    """Run one planned step: lock-step draft rounds, one verification, acceptance by the sampling rule.

    Parameters
    ----------
    contexts
        The batched requests' token sequences.
    routes, lengths
        Each batched request's drafters and speculation length (0: no draft). Several drafters make a token
        tree, which the verifier scores in one pass with tree attention
        (:func:`~edgeplan.validation.serving.tree.tree_distributions`: the context and every shared prefix once)
        and :func:`~edgeplan.validation.serving.speculative.verify_tree` walks.
    """
    from edgeplan.validation.serving.speculative import verify_tree

    t0 = time.perf_counter()
    pace, over = cluster.pace, 0.0
    by_drafter: dict[int, list[int]] = {}
    for r, s in routes.items():
        for j in (s if lengths[r] > 0 else ()):
            by_drafter.setdefault(j, []).append(r)
    if by_drafter:
        cluster.broadcast({j: ("start", {r: contexts[r] for r in rs}) for j, rs in by_drafter.items()})
    chains: dict[int, dict[int, list[int]]] = {r: {j: [] for j in s} if lengths[r] > 0 else {}
                                               for r, s in routes.items()}
    qs: dict[int, dict[int, list[np.ndarray]]] = {r: {j: [] for j in c} for r, c in chains.items()}
    for i in range(max(lengths.values(), default=0)):
        calls = {j: ("round", [r for r in rs if lengths[r] > i]) for j, rs in by_drafter.items()}
        calls = {j: (*c, _round_pad(pace, j, len(c[1]))) for j, c in calls.items() if c[1]}
        for j, (out, work) in cluster.broadcast(calls).items():
            over = max(over, work - calls[j][2]) if pace else 0.0
            for r, (x, q) in out.items():
                chains[r][j].append(x)
                qs[r][j].append(q)
    t1 = time.perf_counter()
    # one token tree per request (without drafters: its context alone)
    order = list(routes)
    trees = [(np.asarray(contexts[r], dtype=np.int64), [chains[r][j] for j in chains[r]]) for r in order]
    pad = _verify_pad(pace, routes, lengths, contexts)
    dists, work = cluster.call(-1, "verify", trees, pad)
    over = max(over, work - pad) if pace else 0.0
    t2 = time.perf_counter()
    committed, accepted = {}, {}
    for r, p in zip(order, dists, strict=True):
        js = list(chains[r])
        acc, token = verify_tree(p, [chains[r][j] for j in js] or [[]], [qs[r][j] for j in js] or [[]], 1.0, rng)
        committed[r] = [*acc, token]
        accepted[r] = len(acc)
    return StepOutcome(committed, accepted, time.perf_counter() - t0, t1 - t0, t2 - t1, max(over, 0.0))


def _round_pad(pace: Timing | None, j: int, m: int) -> float:
    """Drafter ``j``'s paced draft round of ``m`` requests (0: not paced)."""
    return 0.0 if pace is None else float(pace.draft_base_s[j] + pace.draft_per_request_s[j] * m)


def _verify_pad(pace: Timing | None, routes: dict[int, tuple[int, ...]], lengths: dict[int, int],
                contexts: dict[int, np.ndarray]) -> float:
    """The paced verification of a batch, :math:`V` of the step model less one hop (0: not paced)."""
    if pace is None:
        return 0.0
    tokens = sum(1 + lengths[r] * len(s) if lengths[r] > 0 else 1 for r, s in routes.items())
    V = verify_time(pace.verify_s, len(routes), tokens, sum(len(c) for c in contexts.values()))
    return max(V - pace.hop_s, 0.0)


@dataclass(frozen=True)
class Timing:
    """Timing functions fitted to measured calls (least squares).

    Attributes
    ----------
    draft_base_s, draft_per_request_s
        ``(J,)`` :math:`a_j, b_j` of a draft round.
    hop_s
        :math:`\\ell`, the hub's round trip per round beyond the drafters' own work.
    verify_s
        :math:`(v_0, v_1, v_2, v_3)`.
    """

    draft_base_s: np.ndarray
    draft_per_request_s: np.ndarray
    hop_s: float
    verify_s: np.ndarray

    def slowed(self, factor: float) -> Timing:
        """Devices ``factor`` times slower than these timings (the hop, this host's messages, unchanged).

        Parameters
        ----------
        factor
            How many times slower.
        """
        return Timing(self.draft_base_s * factor, self.draft_per_request_s * factor, self.hop_s,
                      np.asarray(self.verify_s) * factor)


def calibrate(cluster: LiveCluster, *, prompt: int = 16, output: int = 32, repeats: int = 7,
              warmup: int = 20, max_batch: int = 8, max_draft: int = 6, seed: int = 0) -> Timing:
    """Measure draft rounds (1-8 requests, contexts of ``prompt`` to ``prompt + output`` tokens) and
    verifications (1-``max_batch`` requests, 0-``max_draft`` drafts each: the range the run will serve; on this
    host a batch of 16 with 6 drafts took 54 ms against 8 ms for 8, off any line), after ``warmup`` untimed calls
    of each kind, and fit the step model's timing functions (least squares; non-negative for the verifier).

    Parameters
    ----------
    cluster
        A running :class:`LiveCluster`.
    prompt, output
        Contexts of ``prompt`` to ``prompt + output`` tokens.
    repeats, warmup
        Timed calls per size, and untimed calls first.
    max_batch, max_draft
        The verification batches measured: up to this many requests and drafts per request.
    seed
        Seeds the contexts and sizes.
    """
    rng = np.random.default_rng(seed)
    corpus = cluster.models.corpus
    J = cluster.n_drafters
    for _ in range(warmup):  # first calls of a fresh process run slower (allocator, caches): not timed
        for j in range(J):
            cluster.call(j, "start", {0: corpus.sample(1, prompt, rng, [j])[0]})
            cluster.call(j, "round", [0])
        seq = corpus.sample(1, prompt + 4, rng)[0]
        cluster.call(-1, "verify", [(seq[:-4], [seq[-4:].tolist()])])
    a, b, hop = np.zeros(J), np.zeros(J), []
    for j in range(J):
        xs, ys = [], []
        for m in (1, 2, 4, 6, 8):
            for _ in range(repeats):
                ctx = {r: corpus.sample(1, int(rng.integers(prompt, prompt + output)), rng, [j])[0] for r in range(m)}
                cluster.call(j, "start", ctx)
                t0 = time.perf_counter()
                _, inside = cluster.call(j, "round", list(range(m)))
                hop.append(time.perf_counter() - t0 - inside)
                xs.append(m)
                ys.append(inside)
        b[j], a[j] = np.polyfit(xs, ys, 1)
    rows, ys = [], []
    for _ in range(12 * repeats):
        B = int(rng.integers(1, max_batch + 1))
        n = rng.integers(prompt, prompt + output, B)
        k = rng.integers(0, max_draft + 1, B)
        seqs = [corpus.sample(1, int(n[i] + k[i]), rng)[0] for i in range(B)]
        trees = [(sq[:n[i]], [sq[n[i]:].tolist()] if k[i] else []) for i, sq in enumerate(seqs)]
        t0 = time.perf_counter()
        cluster.call(-1, "verify", trees)
        ys.append(time.perf_counter() - t0)
        rows.append([1.0, B, float((1 + k).sum()), float(n.sum())])
    from scipy.optimize import nnls

    v = nnls(np.array(rows), np.array(ys))[0]  # times never fall with more work
    return Timing(np.maximum(a, 0.0), np.maximum(b, 0.0), float(np.median(hop)), v)


def measured_template(timing: Timing, acceptance: np.ndarray, *, prompt: int = 16, output: int = 32,
                      capacity: int = 8, max_speculation: int = 6, max_verify_tokens: float = 56,
                      overhead_s: float = 0.0, domain: Any = (0,), context_tokens: Any = None,
                      name: str = "measured") -> SpeculativeServing:
    """A step template from measured timings (:func:`calibrate`) and a measured
    acceptance table (:func:`~edgeplan.validation.serving.speculative.measure_acceptance`).

    Parameters
    ----------
    timing
        A :class:`Timing`.
    acceptance
        ``(J, D)`` measured :math:`\\alpha_{jd}`.
    prompt, output
        The stream's prompt and output lengths (:math:`\\theta` is the target's time per token at batch 1 and
        the mean context).
    capacity, max_speculation, max_verify_tokens
        :math:`c_j`, :math:`K` and :math:`N_{max}` (default: 8 requests with 6 drafts, the range
        :func:`~edgeplan.validation.serving.live.calibrate` measures).
    overhead_s
        The hub's own time per step (planning and messages), added to :math:`v_0`.
    domain, context_tokens, name
        The step's requests (default one request of domain 0 with a ``prompt``-token context: a template whose
        requests the simulator replaces) and its name.
    """
    v = np.asarray(timing.verify_s, dtype=float) + np.array([overhead_s, 0.0, 0.0, 0.0])
    J = acceptance.shape[0]
    ctx = [float(prompt)] * len(domain) if context_tokens is None else context_tokens
    return SpeculativeServing(domain=domain, context_tokens=ctx, acceptance=acceptance,
                              draft_capacity=np.full(J, float(capacity)), draft_base_s=timing.draft_base_s,
                              draft_per_request_s=timing.draft_per_request_s, verify_s=v,
                              max_speculation=max_speculation, max_verify_tokens=max_verify_tokens,
                              hop_s=timing.hop_s,
                              token_value_s=float(v[:3].sum() + v[3] * (prompt + output / 2)), name=name)


__all__ = [
    "LiveCluster",
    "ServingModels",
    "StepOutcome",
    "Timing",
    "Worker",
    "calibrate",
    "execute_step",
    "measured_template",
]
