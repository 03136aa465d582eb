"""``edgeplan validate`` for a Caesar round: every device's payloads encoded for real at the plan's levels.

:func:`validate_compression` builds tensors of the round's sizes (heavy-tailed, seeded: Student-t with 3 degrees
of freedom, like the generator's updates), encodes each device's download and upload with the real codecs
(:mod:`edgeplan.validation.compression.codecs`) at its planned levels, and reports the bytes each payload takes
against the plan's, and the upload deviation of these tensors against the top-k profile of the same tensors. The
deviations of real updates across rounds are what :func:`edgeplan.experiments.caesar_run.run_caesar` measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgeplan.formulations.compression.round import CompressionChoice, CompressionRound
from edgeplan.formulations.compression.wire import topk_error_profile
from edgeplan.registry import validator
from edgeplan.validation.compression.codecs import caesar_decode, caesar_encode, deviation, topk_decode, topk_encode


@dataclass(frozen=True)
class CompressionValidationReport:
    """The round's payloads encoded for real.

    Attributes
    ----------
    predicted_bytes, measured_bytes
        ``(n, 2)`` download and upload bytes per device: the plan's and the payloads' lengths.
    upload_deviation, profile_deviation
        ``(n,)`` the upload deviation of the tensors, measured after decoding and from their top-k profile.
    """

    predicted_bytes: np.ndarray
    measured_bytes: np.ndarray
    upload_deviation: np.ndarray
    profile_deviation: np.ndarray

    @property
    def exact(self) -> bool:
        """Every payload has exactly the planned length."""
        return bool(np.array_equal(self.predicted_bytes, self.measured_bytes))

    def __str__(self) -> str:
        total = self.measured_bytes.sum()
        worst = float(np.max(np.abs(self.upload_deviation - self.profile_deviation), initial=0.0))
        return (f"payloads of {len(self.measured_bytes)} devices: {total / 1e6:.3f} MB on the wire, "
                f"{self.predicted_bytes.sum() / 1e6:.3f} MB planned; every payload as planned: {self.exact}; "
                f"upload deviation against the tensors' top-k profile: largest difference {worst:.2e}")


@validator(CompressionRound, "every device's download and upload encoded with the real codecs")
def validate_compression(problem: CompressionRound, plan: CompressionChoice, *, device: str = "cpu",
                         seed: int = 0) -> CompressionValidationReport:
    """Encode every device's payloads at the plan's levels (module docstring).

    Parameters
    ----------
    problem, plan
        A round and its plan.
    device
        Accepted for the common signature; the codecs run on the CPU.
    seed
        The seed of the tensors.
    """
    gen = torch.Generator().manual_seed(seed)
    dist = torch.distributions.StudentT(torch.tensor(3.0))
    m = problem.evaluate(plan)
    measured, dev, prof = [], [], []
    for i in range(problem.n_devices):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        tensors = [dist.sample((int(n),)) for n in problem.sizes]
        th_d, th_u = float(problem.levels[plan.down[i]]), float(problem.levels[plan.up[i]])
        down = [caesar_encode(t, th_d) for t in tensors]
        up = [topk_encode(t, th_u) for t in tensors]
        measured.append([sum(map(len, down)), sum(map(len, up))])
        for t, p in zip(tensors, down, strict=True):
            caesar_decode(p, t, th_d)  # decodable against a copy of the right shape
        flat = torch.cat(tensors)
        decoded = torch.cat([topk_decode(p, t.shape, th_u) for t, p in zip(tensors, up, strict=True)])
        dev.append(deviation(flat, decoded))
        energy = np.array([float((t ** 2).sum()) for t in tensors])
        shares = np.array([topk_error_profile(t.numpy(), [th_u])[0] for t in tensors])
        prof.append(float(energy @ shares / energy.sum()) if energy.sum() > 0 else 0.0)
    return CompressionValidationReport(predicted_bytes=np.stack([m.down_bytes, m.up_bytes], axis=1),
                                       measured_bytes=np.array(measured, dtype=float),
                                       upload_deviation=np.array(dev), profile_deviation=np.array(prof))


__all__ = ["CompressionValidationReport", "validate_compression"]
