r"""Validate CoCa cache plans on a real model: plan each period, serve a non-IID stream, merge, compare.

:func:`validate_cache` runs CoCa's protocol (``docs/models/cache.md``) for several allocation methods side by side
on the same requests:

0. **Offline** (:func:`prepare_cache_model`): cut a zoo model at its block outputs, re-estimate batch norm,
   fit the head on a labelled class-structured stream, build the global cache from the same stream, and
   measure the separability of the semantic vectors on held-out requests. CoCa's margin :math:`\Theta` (and
   the multi-exit confidence threshold, with the temperature set to the median top-2 gap) is the smallest
   whose hits at the deepest layer, all classes cached, agree with the model ``precision_target`` of the
   time.
1. **Clients** draw long-tailed, non-IID requests: Zipf(``zipf``) over a client-specific class order.
   Period 0 is served without a cache.
2. **Every period** :math:`t \ge 1`, per method: class importance from the client's own outputs so far
   (frequency x recency, :func:`~edgeplan.formulations.cache.instances.class_importance`); a
   :class:`~edgeplan.formulations.cache.replay.CacheReplay` from the previous period's requests (re-run
   without cache: their semantic vectors against the method's current global cache) and this period's
   re-profiled block and lookup times; its calibrated
   :class:`~edgeplan.formulations.cache.placement.CachePlacement`; the method's plan (``cache-replay`` plans on the
   replay, ``multi-exit`` on a replay with the confidence rule, the others on the placement).
3. **Serve** every request of the period, batch size 1, under every method's plan in turn (rotating the
   order, so load drifts hit all methods alike), timing each request end to end.
4. **Merge**: the clients' miss vectors (all layers, under the model's own prediction) update the
   method's global cache on the server (:func:`~edgeplan.validation.cache.execute.merge_global_cache`).

Reported per method, period and client: measured mean latency, hit ratio, agreement with the uncached
model and accuracy against the true class, next to what the plan's problem predicted (latency, hit ratio,
accuracy) and to the replay of the served requests (the timing model on the exits that happened).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.cache.instances import class_importance, importance_to_prob
from edgeplan.formulations.cache.placement import CachePlan
from edgeplan.formulations.cache.replay import CacheReplay
from edgeplan.solvers.api import solve
from edgeplan.validation.cache.execute import (
    CachedModel,
    ClassStream,
    Executor,
    cached_model,
    calibrate_threshold,
    class_centres,
    fit_head,
    merge_global_cache,
    recalibrate_batchnorm,
    semantic_vectors,
    separability,
)

DEFAULT_METHODS = ("no-cache", "aca", "cache-dp", "cache-replay", "all-layers", "static-topk", "multi-exit")


@dataclass(eq=False)
class CacheSetup:
    """A prepared model: blocks, fitted head, class stream, initial global cache and thresholds."""

    model: CachedModel
    stream: ClassStream
    centres: list[np.ndarray]
    freq: np.ndarray
    threshold: float
    exit_threshold: float
    temperature: float
    separability: dict[str, Any]
    full_accuracy: float
    n_classes: int


def prepare_cache_model(model: str = "resnet18", *, size: str = "full", input_size: int | None = 64,
                        n_classes: int = 10, noise: float = 1.0, train_per_class: int = 40,
                        precision_target: float = 0.99, seed: int = 0) -> CacheSetup:
    """Offline step 0 of the module docstring."""
    cm, module = cached_model(model, size=size, input_size=input_size, seed=seed)
    stream = ClassStream.make(n_classes, cm.input_shape, noise, seed)
    rng = np.random.default_rng(seed + 1)
    y_train = np.repeat(np.arange(n_classes), train_per_class)
    x_train = stream.sample(y_train, rng)
    if cm.family == "cnn":
        recalibrate_batchnorm(cm, module, x_train)
    vec, _, last = semantic_vectors(cm, x_train, with_head=False)
    fit_head(cm, last, y_train, n_classes)
    centres = class_centres(vec, y_train, n_classes)
    y_test = np.repeat(np.arange(n_classes), max(10, train_per_class // 2))
    v_test, p_test, _ = semantic_vectors(cm, stream.sample(y_test, rng))
    s = v_test[-1] @ centres[-1].T
    top = -np.sort(-s, axis=1)[:, :2]
    agrees = s.argmax(axis=1) == p_test
    theta = calibrate_threshold((top[:, 0] - top[:, 1]) / np.abs(top[:, 1]), agrees, precision_target)
    temperature = max(float(np.median(top[:, 0] - top[:, 1])), 1e-6)
    conf = 1.0 / np.exp((s - top[:, :1]) / temperature).sum(axis=1)
    tau = calibrate_threshold(conf, agrees, precision_target)
    return CacheSetup(model=cm, stream=stream, centres=centres, freq=np.bincount(y_train, minlength=n_classes)
                      .astype(float), threshold=max(theta, 0.0), exit_threshold=min(max(tau, 0.0), 1.0),
                      temperature=temperature, separability=separability(v_test, y_test, centres),
                      full_accuracy=float((p_test == y_test).mean()), n_classes=n_classes)


def client_streams(n_clients: int, n_classes: int, n_requests: int, *, zipf: float, seed: int) -> np.ndarray:
    """``(N, n_requests)`` true classes: Zipf(``zipf``) over a client-specific order (long-tailed, non-IID)."""
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, n_classes + 1) ** zipf
    return np.stack([rng.permutation(n_classes)[rng.choice(n_classes, n_requests, p=w / w.sum())]
                     for _ in range(n_clients)])


def replay_problem(setup: CacheSetup, *, n_clients: int = 4, requests: int = 100, zipf: float = 1.2,
                   accuracy_drop: float = 0.03, max_entries: float | None = None, profile_samples: int = 6,
                   clock: str = "thread", seed: int = 0, **system: Any) -> CacheReplay:
    """A :class:`CacheReplay` recorded on the real model: client streams, semantic vectors, profiled timings.

    The lookup rule is CoCa's with the set-up's :math:`\\Theta`; the class ranking and request
    probabilities are each client's reference frequencies; ``system`` overrides other fields.
    """
    cm, C, L = setup.model, setup.n_classes, setup.model.n_layers
    truth = client_streams(n_clients, C, requests, zipf=zipf, seed=seed + 3)
    x = setup.stream.sample(truth.ravel(), np.random.default_rng(seed + 7))
    vec, pred, _ = semantic_vectors(cm, x)
    prof = np.linspace(0, x.shape[0] - 1, profile_samples).astype(int)
    block, fixed, kappa = Executor(cm, clock).profile(x[prof], setup.centres, C)
    kw: dict[str, Any] = dict(block_time_s=np.tile(block, (n_clients, 1)),
                              lookup_fixed_s=np.tile(fixed, (n_clients, 1)),
                              lookup_entry_s=np.tile(kappa, (n_clients, 1)), dims=cm.dims,
                              max_entries=float(np.ceil(C * L / 3)) if max_entries is None else max_entries,
                              accuracy_floor=1.0 - accuracy_drop, threshold=setup.threshold)
    kw.update(system)
    return CacheReplay(scores=np.stack([v @ g.T for v, g in zip(vec, setup.centres, strict=True)]),
                       client=np.repeat(np.arange(n_clients), requests), reference=pred,
                       full_agrees=None, **kw)


@dataclass
class _MethodState:
    centres: list[np.ndarray]
    freq: np.ndarray
    history: list[list[int]]
    plan: CachePlan | None = None
    status: str = ""
    predicted: Any = None
    replay: CacheReplay | None = None
    problem: Any = None


@dataclass(eq=False)
class CacheValidation:
    """Rows per (method, period, client) and the set-up figures; ``summary()`` aggregates per method."""

    rows: list[dict[str, Any]]
    separability: dict[str, Any]
    full_accuracy: float
    threshold: float
    timing: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)

    def _select(self, method: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["method"] == method]

    def summary(self) -> list[dict[str, Any]]:
        """Per method: request-weighted latency, reduction and accuracy change against ``no-cache``, errors."""
        base = self._agg(self._select("no-cache")) if self._select("no-cache") else None
        out = []
        for m in dict.fromkeys(r["method"] for r in self.rows):
            a = self._agg(self._select(m))
            if base is not None:
                a["latency_reduction"] = 1.0 - a["latency_s"] / base["latency_s"]
                a["accuracy_change"] = a["accuracy"] - base["accuracy"]
                a["agreement_change"] = a["agreement"] - base["agreement"]
            out.append({"method": m, **a})
        return out

    @staticmethod
    def _agg(rows: list[dict[str, Any]]) -> dict[str, float]:
        n = np.array([r["requests"] for r in rows], dtype=float)
        get = lambda key: np.array([r[key] for r in rows], dtype=float)  # noqa: E731
        rel = get("predicted_latency_s") / get("latency_s") - 1.0
        rel_trace = get("trace_latency_s") / get("latency_s") - 1.0
        rel_norm = get("predicted_normalized_latency") / get("normalized_latency") - 1.0
        return {"latency_s": float(n @ get("latency_s") / n.sum()), "hit_ratio": float(n @ get("hit_ratio") / n.sum()),
                "agreement": float(n @ get("agreement") / n.sum()), "accuracy": float(n @ get("accuracy") / n.sum()),
                "predicted_latency_s": float(n @ get("predicted_latency_s") / n.sum()),
                "predicted_agreement": float(n @ get("predicted_agreement") / n.sum()),
                "mean_abs_latency_error": float(np.nanmean(np.abs(rel))),
                "mean_abs_trace_error": float(np.nanmean(np.abs(rel_trace))),
                "normalized_latency": float(n @ get("normalized_latency") / n.sum()),
                "predicted_normalized_latency": float(n @ get("predicted_normalized_latency") / n.sum()),
                "mean_abs_normalized_error": float(np.nanmean(np.abs(rel_norm))),
                "exit_match": float(n @ get("exit_match") / n.sum())}

    def per_client(self, method: str) -> list[dict[str, float]]:
        """Measured and predicted latency per client (over the periods) and the relative error."""
        rows = self._select(method)
        out = []
        for i in sorted({r["client"] for r in rows}):
            a = self._agg([r for r in rows if r["client"] == i])
            trace = float(np.mean([r["trace_latency_s"] for r in rows if r["client"] == i]))
            out.append({"client": i, "measured_s": a["latency_s"], "predicted_s": a["predicted_latency_s"],
                        "error": a["predicted_latency_s"] / a["latency_s"] - 1.0, "trace_s": trace,
                        "trace_error": trace / a["latency_s"] - 1.0,
                        "normalized": a["normalized_latency"],
                        "predicted_normalized": a["predicted_normalized_latency"],
                        "normalized_error": a["predicted_normalized_latency"] / a["normalized_latency"] - 1.0,
                        "agreement": a["agreement"], "predicted_agreement": a["predicted_agreement"]})
        return out

    def __str__(self) -> str:
        lines = [f"separability (nearest-centre accuracy per layer): "
                 f"{np.round(self.separability['nearest_centre_accuracy'], 3).tolist()}; "
                 f"uncached model accuracy {self.full_accuracy:.3f}; Theta {self.threshold:.4g}",
                 f"{'method':<13}{'lat ms':>8}{'red.':>8}{'hit':>7}{'agree':>7}{'acc':>7}{'dAcc':>7}"
                 f"{'pred ms':>9}{'|err|':>7}{'T/Tref':>8}{'pred':>7}{'|err|':>7}{'|trace|':>8}"]
        for s in self.summary():
            lines.append(f"{s['method']:<13}{s['latency_s'] * 1e3:8.3f}{s.get('latency_reduction', 0):8.1%}"
                         f"{s['hit_ratio']:7.2f}{s['agreement']:7.3f}{s['accuracy']:7.3f}"
                         f"{s.get('accuracy_change', 0):+7.3f}{s['predicted_latency_s'] * 1e3:9.3f}"
                         f"{s['mean_abs_latency_error']:7.1%}{s['normalized_latency']:8.3f}"
                         f"{s['predicted_normalized_latency']:7.3f}{s['mean_abs_normalized_error']:7.1%}"
                         f"{s['mean_abs_trace_error']:8.1%}")
        return "\n".join(lines)


def _plan_for(method: str, replay: CacheReplay, depth: str, exit_kw: dict[str, float],
              time_limit: float | None) -> tuple[CacheReplay, Any, Any]:
    """(the replay with the method's lookup rule, the problem planned on, the result) for one method."""
    if method == "multi-exit":
        replay = CacheReplay(**{**_fields(replay), "rule": "exit", **exit_kw})
    problem = replay if method == "cache-replay" else replay.to_placement(depth=depth)
    return replay, problem, solve(problem, method, time_limit=time_limit)


def _fields(replay: CacheReplay) -> dict[str, Any]:
    names = ("block_time_s", "lookup_fixed_s", "lookup_entry_s", "dims", "request_prob", "class_rank", "weights",
             "max_entries", "max_memory_bytes", "max_layers", "accuracy_floor", "latency_slo_s", "goal",
             "bytes_per_value", "scores", "client", "reference", "full_agrees", "rule", "threshold", "score_base",
             "temperature")
    return {k: getattr(replay, k) for k in names}


def validate_cache(setup: CacheSetup | None = None, *, methods: Sequence[str] = DEFAULT_METHODS,
                   n_clients: int = 4, period: int = 40, n_periods: int = 3, zipf: float = 1.2,
                   accuracy_drop: float = 0.03, max_entries: float | None = None, max_layers: int | None = None,
                   depth: str = "dense", rho: float = 0.99, alpha: float = 0.5, profile_samples: int = 6,
                   time_limit: float | None = 60.0, threads: int | None = 1, clock: str = "thread",
                   seed: int = 0, **prepare: Any) -> CacheValidation:
    """Run the protocol of the module docstring; ``prepare`` goes to :func:`prepare_cache_model`.

    ``max_entries`` defaults to :math:`\\lceil C L / 3 \\rceil` per client; the accuracy floor is
    ``1 - accuracy_drop`` agreement with the uncached model. Requests are timed with ``clock``
    (:class:`~edgeplan.validation.cache.execute.Executor`: ``"thread"`` CPU time, which needs ``threads=1``, or
    ``"wall"``).
    """
    if clock == "thread" and threads != 1:
        raise ProblemDataError(f"`clock` = 'thread' with `threads` = {threads!r}; thread CPU time counts one "
                               "compute thread: expected threads=1 (or clock='wall')")
    if n_periods < 1 or period < 2 or n_clients < 1:
        raise ProblemDataError(f"`n_periods` = {n_periods}, `period` = {period}, `n_clients` = {n_clients}; "
                               "expected at least 1 period of at least 2 requests for at least 1 client")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        setup = setup if setup is not None else prepare_cache_model(seed=seed, **prepare)
        return _run(setup, tuple(methods), n_clients, period, n_periods, zipf, accuracy_drop, max_entries,
                    max_layers, depth, rho, alpha, profile_samples, time_limit, clock, seed)
    finally:
        torch.set_num_threads(old_threads)


def _run(setup: CacheSetup, methods: tuple[str, ...], n_clients: int, period: int, n_periods: int, zipf: float,
         accuracy_drop: float, max_entries: float | None, max_layers: int | None, depth: str, rho: float,
         alpha: float, profile_samples: int, time_limit: float | None, clock: str, seed: int) -> CacheValidation:
    """The protocol of :func:`validate_cache`, period by period.

    Length: one loop over periods carries the state every step reads (histories, global caches, the previous
    period's vectors); steps 1-4 of the module docstring are marked inside it.
    """
    cm, C, L = setup.model, setup.n_classes, setup.model.n_layers
    rng = np.random.default_rng(seed + 7)
    truth = client_streams(n_clients, C, period * (n_periods + 1), zipf=zipf, seed=seed + 3)
    budget = float(np.ceil(C * L / 3)) if max_entries is None else max_entries
    exit_kw = {"threshold": setup.exit_threshold, "temperature": setup.temperature}
    states = {m: _MethodState([g.copy() for g in setup.centres], setup.freq.copy(), [[] for _ in range(n_clients)])
              for m in methods}
    # period 0: no cache; its outputs (the uncached predictions) start every client's history
    y = truth[:, :period]
    x_prev = setup.stream.sample(y.ravel(), rng)
    vec_prev, pred_prev, _ = semantic_vectors(cm, x_prev)
    client_prev = np.repeat(np.arange(n_clients), period)
    for st in states.values():
        for i in range(n_clients):
            st.history[i].extend(pred_prev[client_prev == i].tolist())
    rows: list[dict[str, Any]] = []
    timing: dict[str, np.ndarray] = {}
    executor = Executor(cm, clock)
    for t in range(1, n_periods + 1):
        prof = np.linspace(0, x_prev.shape[0] - 1, profile_samples).astype(int)
        executor.configure([], [], [])
        block, fixed, kappa = executor.profile(x_prev[prof], setup.centres, C)
        timing = {"block_time_s": block, "lookup_fixed_s": fixed, "lookup_entry_s": kappa}
        system = dict(block_time_s=np.tile(block, (n_clients, 1)), lookup_fixed_s=np.tile(fixed, (n_clients, 1)),
                      lookup_entry_s=np.tile(kappa, (n_clients, 1)), dims=cm.dims, max_entries=budget,
                      max_layers=max_layers, accuracy_floor=1.0 - accuracy_drop)
        # plan every method on the previous period's requests
        for m, st in states.items():
            imp = np.stack([class_importance(np.array(h), C, alpha=alpha, window=period) for h in st.history])
            p = importance_to_prob(imp)
            replay = CacheReplay(**system, scores=np.stack([v @ g.T for v, g in zip(vec_prev, st.centres,
                                                                                        strict=True)]),
                                 client=client_prev, reference=pred_prev, request_prob=p,
                                 class_rank=np.argsort(-p, axis=1, kind="stable"), threshold=setup.threshold)
            st.replay, st.problem, res = _plan_for(m, replay, depth, exit_kw, time_limit)
            st.status = res.status.value
            # a baseline whose plan breaks a floor is still served as it is (its plan is kept in the stats)
            plan = res.plan if res.plan is not None else res.stats.get("rejected_plan")
            st.plan = plan if plan is not None else replay.no_cache_plan()
            st.predicted = st.problem.evaluate(st.plan)
        # serve this period
        y = truth[:, t * period:(t + 1) * period]
        x = setup.stream.sample(y.ravel(), rng)
        client = np.repeat(np.arange(n_clients), period)
        served = {m: np.zeros((x.shape[0], 3)) for m in methods}  # label, exit layer, latency
        execs = {}
        for m, st in states.items():
            for i in range(n_clients):
                ex, rp = Executor(cm, clock), st.replay
                ex.configure(st.centres, [c for c in rp.class_rank[i] if c in set(st.plan.classes[i])],
                             st.plan.layers[i], rule=rp.rule, threshold=rp.threshold, score_base=rp.score_base,
                             temperature=rp.temperature)
                execs[m, i] = ex
        # an uncached reference serve in every slot: drift-free normalisation and this period's block times
        executor.configure([], [], [])
        ref_lat, ref_blocks = np.zeros(x.shape[0]), []
        slots = (*methods, None)
        for s in range(x.shape[0]):
            for m in slots[s % len(slots):] + slots[:s % len(slots)]:
                if m is None:
                    stamps: list[float] = []
                    r = executor.serve(x[s:s + 1], stamps)
                    ref_lat[s] = r.latency_s
                    ref_blocks.append(np.diff([*stamps, stamps[0] + r.latency_s]))
                else:
                    r = execs[m, int(client[s])].serve(x[s:s + 1])
                    served[m][s] = (r.label, r.exit_layer, r.latency_s)
        now = np.tile(np.mean(np.array(ref_blocks), axis=0), (n_clients, 1))
        vec, pred, _ = semantic_vectors(cm, x)
        for m, st in states.items():
            label, exit_layer, lat = served[m][:, 0].astype(int), served[m][:, 1].astype(int), served[m][:, 2]
            tr = CacheReplay(**{**_fields(st.replay), "scores": np.stack(
                [v @ g.T for v, g in zip(vec, st.centres, strict=True)]), "client": client, "reference": pred,
                "full_agrees": None, "block_time_s": now}).trace(st.plan)
            for i in range(n_clients):
                sel = client == i
                rows.append({
                    "method": m, "period": t, "client": i, "status": st.status, "requests": int(sel.sum()),
                    "k": len(st.plan.classes[i]), "layers": list(st.plan.layers[i]),
                    "latency_s": float(lat[sel].mean()), "hit_ratio": float((exit_layer[sel] < L).mean()),
                    "agreement": float((label[sel] == pred[sel]).mean()),
                    "accuracy": float((label[sel] == y.ravel()[sel]).mean()),
                    "predicted_latency_s": float(st.predicted.latency_s[i]),
                    "predicted_hit_ratio": float(st.predicted.hit_ratio[i]),
                    "predicted_agreement": float(st.predicted.accuracy[i]),
                    "trace_latency_s": float(tr.latency_s[sel].mean()),
                    "exit_match": float((tr.exit_layer[sel] == exit_layer[sel]).mean()),
                    "reference_latency_s": float(ref_lat[sel].mean()),
                    "normalized_latency": float(lat[sel].mean() / ref_lat[sel].mean()),
                    "predicted_normalized_latency": float(st.predicted.latency_s[i] / st.problem.full_latency_s[i])})
            # server merge of the miss vectors, under the model's own output
            miss = exit_layer == L
            sums = [np.zeros((C, v.shape[1])) for v in vec]
            counts = np.zeros((L, C))
            for l in range(L):
                np.add.at(sums[l], label[miss], vec[l][miss])
                counts[l] = np.bincount(label[miss], minlength=C)
            st.centres, st.freq = merge_global_cache(st.centres, st.freq, sums, counts,
                                                     np.bincount(label, minlength=C).astype(float), rho)
            for i in range(n_clients):
                st.history[i].extend(label[client == i].tolist())
        x_prev, vec_prev, pred_prev, client_prev = x, vec, pred, client
    return CacheValidation(rows=rows, separability=setup.separability, full_accuracy=setup.full_accuracy,
                           threshold=setup.threshold, timing=timing,
                           settings={"methods": methods, "n_clients": n_clients, "period": period,
                                     "n_periods": n_periods, "zipf": zipf, "accuracy_drop": accuracy_drop,
                                     "max_entries": budget, "depth": depth, "model": cm.name,
                                     "dims": cm.dims.tolist(), "exit_threshold": setup.exit_threshold,
                                     "temperature": setup.temperature, "clock": clock})


__all__ = ["DEFAULT_METHODS", "CacheSetup", "CacheValidation", "client_streams", "prepare_cache_model",
           "replay_problem", "validate_cache"]
