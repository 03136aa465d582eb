r"""CoSine's routing across steps: scores learned from the accepted drafts, and exploration when a request's recent
acceptance drops (Gao et al., arXiv 2503.10325).

The paper keeps a routing score per request and drafter (a harmonic combination of the drafter's confidence and
the similarity of its drafts to the accepted tokens); "if the recent accepted length drops below a threshold,
the request explores other drafters; otherwise it exploits the best-scored ones". Both of the paper's signals
estimate how often a drafter's tokens are accepted for the request; here the score is that rate, learned.

**Score.** A step in which request :math:`r` had :math:`k` tokens drafted by drafter :math:`j` and :math:`A` of
them accepted checked :math:`A + [A < k]` positions and accepted :math:`A` (acceptance stops at the first
rejection). With :math:`s_{rj}` and :math:`t_{rj}` those counts summed over the steps, each earlier step's
weighed by :math:`\gamma` once per later observation of the pair (recent steps count more), the score is the
posterior mean

.. math::

    \hat\alpha_{rj} = \frac{n_0 \pi_{rj} + s_{rj}}{n_0 + t_{rj}}

with a prior :math:`\pi_{rj}` worth :math:`n_0` positions. With ``pooled`` (the default) the requests of a
domain share what they learn: the prior is the domain's posterior
:math:`\pi_{rj} = (n_0 \pi_j + S_{d_r j}) / (n_0 + T_{d_r j})` over all its requests' counts :math:`S, T`
(undecayed), the router being told each request's domain as a stand-in for the similarity of its prompt to
earlier ones; otherwise :math:`\pi_{rj} = \pi_j`, a drafter's prior alone (by default its mean acceptance
over the domains). A request drafted by several drafters (a token tree) credits each of them
with the tree's counts: an approximation.

**Exploration.** The request's recent acceptance on its current route :math:`S_r` is
:math:`\bar a_r = \sum_{j \in S_r} s_{rj} / \sum_{j \in S_r} t_{rj}` (the decayed counts, without the prior). Once
the route has checked at least :math:`p` positions (a single step's rate is too noisy to judge a drafter by) and
while :math:`\bar a_r` is below the threshold :math:`\eta`, the request explores: drafters it has never been routed to
score :math:`1 + \pi_j` (tried first, best prior first), and the drafters of its current route score
:math:`-1` (left). Otherwise it exploits :math:`\hat\alpha_{rj}`. The paper gives no values for
:math:`\eta, p, n_0, \gamma`; ours are defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeplan._checks import as_array
from edgeplan.errors import ProblemDataError


@dataclass
class CoSineRouter:
    """Routing scores learned while serving, with CoSine's threshold exploration (module docstring).

    Parameters
    ----------
    prior
        ``(J,)`` :math:`\\pi_j`, or ``(J, D)``: a profile per domain (the router then starts from the
        profile's routing).
    pooled
        Whether the requests of a domain share their counts.
    threshold
        :math:`\\eta`; 0 never explores.
    patience
        :math:`p`, positions checked on the current route before it is judged.
    pseudo
        :math:`n_0`.
    decay
        :math:`\\gamma`.

    Attributes
    ----------
    log
        One ``(request, drafters, k, accepted, explored)`` per observed drafted request, in order.
    """

    prior: Any
    pooled: bool = True
    threshold: float = 0.6
    patience: float = 8.0
    pseudo: float = 2.0
    decay: float = 0.8
    log: list[tuple[int, tuple[int, ...], int, int, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prior = as_array("prior", self.prior, min_value=0.0, max_value=1.0)
        if self.prior.ndim not in (1, 2) or self.prior.shape[0] < 1:
            raise ProblemDataError(f"`prior` has shape {self.prior.shape}; expected (drafters,) or "
                                   "(drafters, domains)")
        for key, hi in (("threshold", 1.0), ("patience", np.inf), ("pseudo", np.inf), ("decay", 1.0)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= hi:
                raise ProblemDataError(f"`{key}` = {v!r}; expected a number in [0, {hi}]")
        J = self.prior.shape[0]
        self._s: dict[int, np.ndarray] = {}
        self._t: dict[int, np.ndarray] = {}
        self._route: dict[int, tuple[int, ...]] = {}
        self._tried: dict[int, np.ndarray] = {}
        self._zero = np.zeros(J)
        self._S: dict[int, np.ndarray] = {}
        self._T: dict[int, np.ndarray] = {}

    @classmethod
    def blind(cls, acceptance: Any, **kw: Any) -> CoSineRouter:
        """A router whose prior is each drafter's mean of ``acceptance`` ``(J, D)`` over the domains."""
        return cls(np.asarray(acceptance, dtype=float).mean(axis=1), **kw)

    def _posterior(self, prior: np.ndarray, accepted: np.ndarray, checked: np.ndarray) -> np.ndarray:
        """:math:`(n_0 \\pi + s) / (n_0 + t)`, the prior where nothing weighs."""
        den = self.pseudo + checked
        return np.where(den > 0, (self.pseudo * prior + accepted) / np.where(den > 0, den, 1.0), prior)

    def _prior(self, domain: int) -> np.ndarray:
        pi = self.prior if self.prior.ndim == 1 else self.prior[:, domain]
        if not self.pooled or domain not in self._S:
            return pi
        return self._posterior(pi, self._S[domain], self._T[domain])

    def exploring(self, request: int) -> bool:
        """Whether ``request`` explores at its next step."""
        route = self._route.get(request)
        if route is None:
            return False
        idx = list(route)
        checked = float(self._t[request][idx].sum())
        return checked >= self.patience and float(self._s[request][idx].sum()) < self.threshold * checked

    def scores(self, requests: Any, domains: Any) -> np.ndarray:
        """``(len(requests), J)`` scores for the next step (the ``cosine`` method's option ``scores``)."""
        requests, domains = np.asarray(requests).tolist(), np.asarray(domains).tolist()
        out = np.empty((len(requests), self.prior.shape[0]))
        for i, (r, d) in enumerate(zip(requests, domains, strict=True)):
            pi = self._prior(d)
            s, t = self._s.get(r, self._zero), self._t.get(r, self._zero)
            out[i] = self._posterior(pi, s, t)
            if self.exploring(r):
                out[i] = np.where(self._tried[r], out[i], 1.0 + pi)
                out[i, list(self._route[r])] = -1.0
        return out

    def observe(self, requests: Any, domains: Any, routes: Any, lengths: Any, accepted: Any) -> None:
        """Learn from one step: per drafted request its domain, drafters, draft length and accepted drafts
        (requests without drafters are ignored)."""
        J = self.prior.shape[0]
        for r, d, route, k, a in zip(np.asarray(requests).tolist(), np.asarray(domains).tolist(), routes,
                                     np.asarray(lengths).tolist(), np.asarray(accepted).tolist(), strict=True):
            if not route or k <= 0:
                continue
            route = tuple(int(j) for j in route)
            checked = a + (1 if a < k else 0)
            explored = self.exploring(r)
            s = self._s.setdefault(r, np.zeros(J))
            t = self._t.setdefault(r, np.zeros(J))
            idx = list(route)
            s[idx] = self.decay * s[idx] + a
            t[idx] = self.decay * t[idx] + checked
            self._S.setdefault(d, np.zeros(J))[idx] += a
            self._T.setdefault(d, np.zeros(J))[idx] += checked
            self._tried.setdefault(r, np.zeros(J, dtype=bool))[idx] = True
            self._route[r] = route
            self.log.append((r, route, int(k), int(a), explored))


__all__ = ["CoSineRouter"]
