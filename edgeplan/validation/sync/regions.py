r"""Cross-region training for real: R worker processes train the decoder of :mod:`.lm` on their own data
shards, and a coordinator synchronises model fragments over paced loopback links (:mod:`.links`).

**Inner loop.** Region :math:`r` trains on the domains :math:`\{d : d \bmod R = r\}` of the corpus (non-IID
shards), ``inner_steps`` AdamW steps per slot.

**Outer step (DiLoCo).** For the fragments chosen in slot :math:`t`, each region uploads its pseudo-gradient
:math:`\Delta_r = G - \theta_r` (last global minus local); the coordinator averages, applies Nesterov momentum
SGD (``outer_lr``, ``outer_momentum``) to the global fragment :math:`G \to G'` and sends :math:`G'` back.

**Schedules** (``schedule``):

* ``"diloco"``: every fragment, every ``period``-th slot, blocking (training waits for the transfer);
  the region sets :math:`\theta \leftarrow G'`.
* ``"streaming-diloco"``: a fixed rotation of fragment groups that fit a slot's capacity, overlapped with the
  next slot's training; on arrival :math:`\theta \leftarrow \alpha G' + (1-\alpha)\theta_{now}`
  (``mixing`` :math:`\alpha`).
* ``"cocodc"``: in each slot the fragments with the largest summed change :math:`\sum_r \|\Delta_{r,f}\|^2` that
  fit the capacity, overlapped; on arrival the delay-compensated merge
  :math:`\theta \leftarrow G' + \delta + \lambda\,\delta \odot \delta \odot (G' - \theta_\tau)` with the local
  progress :math:`\delta = \theta_{now} - \theta_\tau` made since the upload at :math:`\tau` (first-order Taylor
  correction in the DC-ASGD form; our reading of CoCoDC's abstract, ``dc_lambda`` :math:`\lambda`).
* a :class:`~edgeplan.formulations.sync.fragments.FragmentPlan`: its fragments per slot, merged as ``cocodc``.

A slot's capacity is half the WAN rate (each byte goes up, then its global value comes down) times the overlap
window, the measured time of the slot's inner steps. Each transfer's time is measured from the region's first
uploaded byte to its last downloaded byte and predicted as the bytes over half the rate (the planning model's
:math:`r_t`, :func:`recorded_problem`).
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.sync.fragments import FragmentPlan, FragmentSync
from edgeplan.solvers.sync.baselines import pack_in_order
from edgeplan.validation.lm import LMConfig, MarkovCorpus, decoder, lm_loss
from edgeplan.validation.sync import links

SCHEDULES = ("diloco", "streaming-diloco", "cocodc")


@dataclass(frozen=True)
class RegionsConfig:
    """One cross-region run (every field is the same in every region).

    Parameters
    ----------
    regions, slots, inner_steps
        R, the slots, and the inner steps per slot.
    n_layer, batch, inner_lr
        The decoder's blocks, sequences per inner step and AdamW's learning rate.
    outer_lr, outer_momentum
        The outer Nesterov SGD.
    wan_bps
        Each region's link rate in bytes per second, both ways.
    period
        DiLoCo's slots between full synchronisations.
    mixing, dc_lambda
        Streaming DiLoCo's :math:`\\alpha` and CoCoDC's :math:`\\lambda`.
    eval_prompts, seed
        Held-out prompts for the global model's loss, and the seed of everything.
    """

    regions: int = 2
    slots: int = 30
    inner_steps: int = 10
    n_layer: int = 4
    batch: int = 16
    inner_lr: float = 3e-3
    outer_lr: float = 0.7
    outer_momentum: float = 0.9
    wan_bps: float = 0.65e6
    period: int = 2
    mixing: float = 0.5
    dc_lambda: float = 0.5
    eval_prompts: int = 32
    seed: int = 0


@dataclass
class RegionsRun:
    """What a run measured.

    Attributes
    ----------
    schedule
        The schedule's name.
    loss
        ``(T,)`` the global model's held-out loss after each slot.
    wall_s
        ``(T,)`` seconds since the start at the end of each slot (the coordinator's clock).
    sent
        Per slot, the fragments synchronised.
    value
        ``(T, F)`` :math:`\\sum_r \\|\\Delta_{r,f}\\|^2` at each slot (what CoCoDC ranks by).
    sizes_bytes
        ``(F,)`` fragment sizes.
    window_s
        ``(T,)`` the slowest region's inner-step time per slot (the overlap window).
    transfer_pred_s, transfer_meas_s
        ``(T,)`` predicted and measured transfer time (slowest region; 0 without a transfer).
    """

    schedule: str
    loss: np.ndarray
    wall_s: np.ndarray
    sent: list[list[int]]
    value: np.ndarray
    sizes_bytes: np.ndarray
    window_s: np.ndarray
    transfer_pred_s: np.ndarray
    transfer_meas_s: np.ndarray
    config: dict[str, Any] = field(default_factory=dict)

    def steps_to(self, target: float) -> int | None:
        """Inner steps until the global loss first reaches ``target`` (None: never)."""
        hit = np.flatnonzero(self.loss <= target)
        return None if not hit.size else int((hit[0] + 1) * self.config["inner_steps"])

    def wall_to(self, target: float) -> float | None:
        """Seconds until the global loss first reaches ``target`` (None: never)."""
        hit = np.flatnonzero(self.loss <= target)
        return None if not hit.size else float(self.wall_s[hit[0]])


def fragment_names(model: Any) -> list[list[str]]:
    """Parameter names per fragment: one per transformer block, then everything else (embeddings, final norm)."""
    names = [n for n, _ in model.named_parameters()]
    blocks = [[n for n in names if n.startswith(f"transformer.h.{b}.")] for b in range(len(model.transformer.h))]
    rest = [n for n in names if not n.startswith("transformer.h.")]
    return [*blocks, rest]


def _lm_config(cfg: RegionsConfig) -> LMConfig:
    return LMConfig(n_layer=cfg.n_layer, batch=cfg.batch, lr=cfg.inner_lr, seed=cfg.seed)


def _worker(region: int, port: int, cfg: RegionsConfig, schedule: str) -> None:  # pragma: no cover - subprocess
    import torch

    torch.set_num_threads(1)
    corpus, lmc = MarkovCorpus(), _lm_config(cfg)
    model = decoder(corpus.n_tokens, lmc).train()
    params = dict(model.named_parameters())
    frags = fragment_names(model)
    glob = {n: p.detach().clone() for n, p in params.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.inner_lr, weight_decay=0.01)
    rng = np.random.default_rng(cfg.seed + 1000 * (region + 1))
    shard = [d for d in range(corpus.domains) if d % cfg.regions == region]
    sock = links.connect(port)
    links.send(sock, region)
    pending: dict[str, Any] = {}

    def merge() -> None:
        if not pending:
            return
        pending["thread"].join()
        snap = pending["snapshot"]
        flat = torch.from_numpy(pending["global"]["x"])
        with torch.no_grad():
            for n, g in zip(snap, torch.split(flat, [params[n].numel() for n in snap]), strict=True):
                g = g.view_as(params[n]).clone()
                p = params[n]
                if schedule == "streaming-diloco":
                    p.copy_(cfg.mixing * g + (1 - cfg.mixing) * p)
                elif schedule == "diloco":
                    p.copy_(g)
                else:
                    delta = p - snap[n]
                    p.copy_(g + delta + cfg.dc_lambda * delta * delta * (g - snap[n]))
                glob[n] = g.clone()
        links.send(sock, pending["measured"])
        pending.clear()

    for _ in range(cfg.slots):
        t0 = time.perf_counter()
        for _ in range(cfg.inner_steps):
            ids = torch.from_numpy(corpus.sample(cfg.batch, lmc.seq, rng, shard))
            loss = lm_loss(model, ids)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        compute = time.perf_counter() - t0
        merge()
        with torch.no_grad():
            delta = {n: (glob[n] - p).detach() for n, p in params.items()}
        norms = [float(sum((delta[n] ** 2).sum() for n in f)) for f in frags]
        links.send(sock, {"norms": norms, "compute_s": compute})
        chosen = links.recv(sock)
        if not chosen:
            continue
        names = [n for f in chosen for n in frags[f]]
        payload = {"x": np.concatenate([delta[n].numpy().ravel() for n in names])}  # one array: least overhead
        snapshot = {n: params[n].detach().clone() for n in names}

        def transfer(payload: dict = payload) -> None:
            start = time.perf_counter()
            links.send(sock, payload, cfg.wan_bps)
            pending["global"] = links.recv(sock)
            pending["measured"] = time.perf_counter() - start

        pending.update(snapshot=snapshot, thread=threading.Thread(target=transfer, daemon=True))
        pending["thread"].start()
        if schedule == "diloco":  # blocking: the outer step completes before training goes on
            merge()
    merge()
    links.send(sock, "done")
    sock.close()


def _choose(schedule: Any, t: int, value: np.ndarray, sizes: np.ndarray, capacity: float, cfg: RegionsConfig,
            groups: list[list[int]] | None) -> list[int]:
    if isinstance(schedule, FragmentPlan):
        return list(schedule.slots[t])
    if schedule == "diloco":
        return list(range(sizes.size)) if (t + 1) % cfg.period == 0 else []
    if schedule == "streaming-diloco":
        return groups[t % len(groups)] if groups else []
    chosen, used = [], 0.0
    for f in np.argsort(-value, kind="stable"):
        if value[f] > 0 and used + sizes[f] <= capacity:
            chosen.append(int(f))
            used += sizes[f]
    return sorted(chosen)


def run_regions(schedule: str | FragmentPlan, cfg: RegionsConfig | None = None, *,
                stream_capacity_s: float | None = None) -> RegionsRun:
    """Run ``cfg.regions`` worker processes under ``schedule`` (module docstring) and measure.

    Parameters
    ----------
    schedule
        ``"diloco"``, ``"streaming-diloco"``, ``"cocodc"`` or a plan with one fragment list per slot.
    cfg
        The run (default :class:`RegionsConfig`).
    stream_capacity_s
        The overlap window Streaming DiLoCo's groups are sized for (default: the first slot's).
    """
    import torch

    cfg = cfg or RegionsConfig()
    if isinstance(schedule, FragmentPlan):
        if len(schedule.slots) != cfg.slots:
            raise ProblemDataError(f"the plan has {len(schedule.slots)} slots; the run has {cfg.slots}")
    elif schedule not in SCHEDULES:
        raise ProblemDataError(f"`schedule` = {schedule!r}; expected one of {', '.join(SCHEDULES)} or a "
                               "FragmentPlan")
    name = "plan" if isinstance(schedule, FragmentPlan) else schedule
    corpus, lmc = MarkovCorpus(), _lm_config(cfg)
    torch.set_num_threads(1)
    model = decoder(corpus.n_tokens, lmc).eval()  # the global model: same initialisation as every region
    params = dict(model.named_parameters())
    frags = fragment_names(model)
    sizes = np.array([sum(params[n].numel() * 4 for n in f) for f in frags], dtype=float)
    if isinstance(schedule, FragmentPlan) and any(s and s[-1] >= len(frags) for s in schedule.slots):
        raise ProblemDataError(f"the plan names fragments beyond the model's {len(frags)}")
    momentum = {n: torch.zeros_like(p) for n, p in params.items()}
    held = torch.from_numpy(corpus.sample(cfg.eval_prompts, lmc.seq, np.random.default_rng(cfg.seed + 7)))
    server, port = links.listener()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, port, cfg, "cocodc" if name == "plan" else name), daemon=True)
             for r in range(cfg.regions)]
    for p in procs:
        p.start()
    conns: list[Any] = [None] * cfg.regions
    try:
        for _ in range(cfg.regions):
            c = _accept(server, procs)
            c.setsockopt(links.socket.IPPROTO_TCP, links.socket.TCP_NODELAY, 1)
            conns[links.recv(c)] = c
        T, F = cfg.slots, len(frags)
        out = {k: np.zeros(T) for k in ("loss", "wall", "window", "pred", "meas")}
        value, sent, groups = np.zeros((T, F)), [], None
        start = time.perf_counter()
        waiting: list[int] = []  # regions whose last transfer's measured time is still to come
        for t in range(T):
            reports = []
            for r, c in enumerate(conns):
                if r in waiting:
                    out["meas"][t - 1] = max(out["meas"][t - 1], links.recv(c))
                reports.append(links.recv(c))
            waiting = []
            value[t] = np.sum([m["norms"] for m in reports], axis=0)
            out["window"][t] = max(m["compute_s"] for m in reports)
            capacity = cfg.wan_bps / 2 * out["window"][t]  # every byte goes up, then the global comes down
            if groups is None:
                cap0 = cfg.wan_bps / 2 * (stream_capacity_s or out["window"][0])
                groups = pack_in_order(sizes, cap0) or [[f] for f in range(F)]  # a fragment over it goes alone
            chosen = _choose(schedule, t, value[t], sizes, capacity, cfg, groups)
            sent.append(chosen)
            for c in conns:
                links.send(c, chosen)
            if not chosen:
                out["loss"][t], out["wall"][t] = _eval(model, held), time.perf_counter() - start
                continue
            names = [n for f in chosen for n in frags[f]]
            uploads: list[Any] = [None] * cfg.regions

            def receive(r: int, uploads: list[Any] = uploads) -> None:
                uploads[r] = links.recv(conns[r])

            threads = [threading.Thread(target=receive, args=(r,)) for r in range(cfg.regions)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            mean = torch.from_numpy(np.mean([u["x"] for u in uploads], axis=0))
            with torch.no_grad():
                for n, d in zip(names, torch.split(mean, [params[n].numel() for n in names]), strict=True):
                    d = d.view_as(params[n])
                    momentum[n].mul_(cfg.outer_momentum).add_(d)
                    params[n].sub_(cfg.outer_lr * (d + cfg.outer_momentum * momentum[n]))
            new = {"x": np.concatenate([params[n].detach().numpy().ravel() for n in names])}
            threads = [threading.Thread(target=links.send, args=(c, new, cfg.wan_bps)) for c in conns]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            nbytes = float(sizes[chosen].sum())
            out["pred"][t] = 2 * nbytes / cfg.wan_bps
            waiting = list(range(cfg.regions))
            out["loss"][t], out["wall"][t] = _eval(model, held), time.perf_counter() - start
        for r, c in enumerate(conns):
            if r in waiting:
                out["meas"][T - 1] = max(out["meas"][T - 1], links.recv(c))
            links.recv(c)  # "done"
    finally:
        for c in conns:
            if c is not None:
                c.close()
        server.close()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return RegionsRun(schedule=name, loss=out["loss"], wall_s=out["wall"], sent=sent, value=value,
                      sizes_bytes=sizes, window_s=out["window"], transfer_pred_s=out["pred"],
                      transfer_meas_s=out["meas"], config=asdict(cfg))


def recorded_problem(run: RegionsRun, max_staleness: int | None = None, name: str | None = None) -> FragmentSync:
    """The :class:`~edgeplan.formulations.sync.fragments.FragmentSync` a run measured: its fragment sizes, the
    summed changes per slot as values, half the WAN rate (a round trip per byte) and the measured windows."""
    cfg = run.config
    return FragmentSync(sizes_bytes=run.sizes_bytes, value=run.value,
                        wan_bps=np.full(run.value.shape[0], cfg["wan_bps"] / 2), window_s=run.window_s,
                        max_staleness=max_staleness, name=name or f"regions-{run.schedule}")


def _accept(server: Any, procs: list[Any], timeout_s: float = 300.0) -> Any:
    """The next worker's connection; a worker that died first is an error naming its exit code."""
    server.settimeout(0.5)
    end = time.perf_counter() + timeout_s
    while time.perf_counter() < end:
        try:
            return server.accept()[0]
        except TimeoutError:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a region worker exited with code {dead[0].exitcode} before connecting "
                                   "(spawned workers re-import the caller's main module: run from a script "
                                   "with an `if __name__ == '__main__':` guard)") from None
    raise RuntimeError(f"no region worker connected within {timeout_s:.0f} s")


def _eval(model: Any, ids: Any) -> float:
    import torch

    with torch.no_grad():
        return float(lm_loss(model, ids))


__all__ = ["SCHEDULES", "RegionsConfig", "RegionsRun", "fragment_names", "recorded_problem", "run_regions"]
