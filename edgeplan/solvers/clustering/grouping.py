"""What the clustering heuristics share: k-means label sets, cutting an order into clusters, choosing tops,
and the pairwise-swap descent (ParallelSFL's fine-tuning step, vectorised over swap partners)."""

from __future__ import annotations

import warnings

import numpy as np

from edgeplan.formulations.base import within
from edgeplan.formulations.clustering.clients import ClientClustering, ClusterPlan, divergence


def kmeans_sets(problem: ClientClustering, k: int, seed: int | None) -> list[np.ndarray]:
    """The workers split by k-means (k-means++ start, seeded) on their label distributions; empty sets dropped."""
    from scipy.cluster.vq import kmeans2

    phi = problem.distributions
    k = max(1, min(k, len(np.unique(phi, axis=0))))  # identical mixes: no more sets than distinct points
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")  # scipy warns of a set left empty; empty sets are dropped below
        _, label = kmeans2(phi, k, seed=np.random.default_rng(seed), minit="++")
    return [np.flatnonzero(label == c) for c in range(k) if np.any(label == c)]


def n_clusters(problem: ClientClustering) -> int:
    """The fewest clusters whose sizes fit ``max_bottoms`` (at least one)."""
    return max(1, -(-problem.n_workers // (problem.max_bottoms + 1)))


def best_top(problem: ClientClustering, members: np.ndarray) -> int:
    """The member that may serve the others as top (Eq. 8, 10), largest ingress first; else the largest ingress."""
    members = np.asarray(members)
    order = members[np.argsort(-problem.ingress_bps[members], kind="stable")]
    t = problem.bottom_time_s
    for j in order:
        rest = members[members != j]
        if rest.size and within(problem.link_bps[rest].sum(), problem.ingress_bps[j]) \
                and within(rest.size * problem.top_s[j], t[rest].max()):
            return int(j)
    return int(order[0])


def plan_of(problem: ClientClustering, groups: list[np.ndarray]) -> ClusterPlan:
    """A plan from member lists, each group's top chosen by :func:`best_top`."""
    assignment = np.zeros(problem.n_workers, dtype=np.int64)
    for c, g in enumerate(groups):
        assignment[g] = c
    return ClusterPlan(assignment, [best_top(problem, g) for g in groups])


def chop(problem: ClientClustering, order: np.ndarray) -> ClusterPlan:
    """``order`` cut into :func:`n_clusters` consecutive groups of near-equal sizes."""
    return plan_of(problem, [g for g in np.array_split(np.asarray(order), n_clusters(problem)) if g.size])


def _utility(problem: ClientClustering, norm: tuple[float, float], sum_phi: np.ndarray, n: np.ndarray,
             slowest: np.ndarray, sum_t: np.ndarray) -> np.ndarray:
    w_bar, d_bar = norm
    wait = slowest - sum_t / n
    div = divergence(sum_phi / n[..., None], problem.reference, problem.divergence)
    return problem.weight * wait / w_bar + (1.0 - problem.weight) * div / d_bar


def swap_descent(problem: ClientClustering, plan: ClusterPlan, passes: int = 2) -> ClusterPlan:
    """Swap bottom workers between clusters, each worker with its best partner, while :math:`\\sum_c U_c` falls
    and Eq. 8 and 10 hold (at most ``passes`` sweeps over the workers)."""
    a = plan.assignment.copy()
    top = plan.top
    bottom = plan.bottoms()
    t, phi, link = problem.bottom_time_s, problem.distributions, problem.link_bps
    C = plan.n_clusters
    ingress, mu_p = problem.ingress_bps[top], problem.top_s[top]
    norm = problem.normalisers

    def stats(c: int) -> tuple:
        m = np.flatnonzero((a == c) & bottom)
        ts = np.sort(t[m])[::-1]
        return (phi[m].sum(axis=0), float(m.size), float(ts[0]), float(ts[1]) if m.size > 1 else -np.inf,
                float(t[m].sum()), float(link[m].sum()))

    S = np.zeros((C, phi.shape[1]))
    n, mx1, mx2, st, ln = (np.zeros(C) for _ in range(5))
    for c in range(C):
        S[c], n[c], mx1[c], mx2[c], st[c], ln[c] = stats(c)
    if np.any(n < 1):
        return plan
    util = _utility(problem, norm, S, n, mx1, st)
    for _ in range(passes):
        moved = False
        for i in np.flatnonzero(bottom):
            ca = a[i]
            js = np.flatnonzero(bottom & (a != ca))
            if js.size == 0:
                continue
            cb = a[js]
            wo_i = mx2[ca] if t[i] >= mx1[ca] else mx1[ca]
            wo_j = np.where(t[js] >= mx1[cb], mx2[cb], mx1[cb])
            new_a_max = np.maximum(wo_i, t[js])
            new_b_max = np.maximum(wo_j, t[i])
            ua = _utility(problem, norm, S[ca] - phi[i] + phi[js], np.full(js.size, n[ca]), new_a_max,
                          st[ca] - t[i] + t[js])
            ub = _utility(problem, norm, S[cb] - phi[js] + phi[i], n[cb], new_b_max, st[cb] - t[js] + t[i])
            gain = ua + ub - util[ca] - util[cb]
            ok = within(ln[ca] - link[i] + link[js], ingress[ca]) & within(ln[cb] - link[js] + link[i], ingress[cb]) \
                & within(n[ca] * mu_p[ca], new_a_max) & within(n[cb] * mu_p[cb], new_b_max)
            gain = np.where(ok, gain, np.inf)
            k = int(np.argmin(gain))
            if gain[k] >= -1e-12:
                continue
            j, b = int(js[k]), int(cb[k])
            a[i], a[j] = b, ca
            for c in (ca, b):
                S[c], n[c], mx1[c], mx2[c], st[c], ln[c] = stats(c)
                util[c] = _utility(problem, norm, S[c][None], n[c:c + 1], mx1[c:c + 1], st[c:c + 1])[0]
            moved = True
        if not moved:
            break
    return ClusterPlan(a, top)


__all__ = ["best_top", "chop", "kmeans_sets", "n_clusters", "plan_of", "swap_descent"]
