"""The MILP of :class:`~edgeplan.formulations.sync.fragments.FragmentSync` (every MILP backend solves it)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from edgeplan.formulations.milp import MILP
from edgeplan.formulations.sync.fragments import FragmentPlan, FragmentSync
from edgeplan.registry import reduction


@reduction(FragmentSync)
def fragment_milp(problem: FragmentSync) -> tuple[MILP, Callable[[np.ndarray], FragmentPlan]]:
    """Binaries :math:`x_{tf}` (column :math:`tF + f`): one capacity row per slot, one staleness row per fragment
    and window, built as one sparse matrix."""
    T, F = problem.n_slots, problem.n_fragments
    cap = sp.kron(sp.eye_array(T), problem.sizes_bytes[None, :], format="csr")
    nw = problem.windows()
    rows = [cap]
    lo = [np.full(T, -np.inf)]
    hi = [problem.capacity_bytes]
    names = [f"capacity[{t}]" for t in range(T)]
    if nw:
        W = problem.max_staleness
        tau, f, k = np.meshgrid(np.arange(nw), np.arange(F), np.arange(W), indexing="ij")
        r = (tau * F + f).ravel()
        c = ((tau + k) * F + f).ravel()
        rows.append(sp.csr_array((np.ones(r.size), (r, c)), shape=(nw * F, T * F)))
        lo.append(np.ones(nw * F))
        hi.append(np.full(nw * F, np.inf))
        names += [f"staleness[{t},{g}]" for t in range(nw) for g in range(F)]
    milp = MILP(c=problem.value.ravel(), A=sp.vstack(rows, format="csc"), row_lower=np.concatenate(lo),
                row_upper=np.concatenate(hi), col_upper=1.0, integrality=np.ones(T * F), sense="max",
                row_names=names, name=f"{problem.name}-milp")
    return milp, lambda x: problem.plan_of(np.asarray(x).reshape(T, F))


__all__ = ["fragment_milp"]
