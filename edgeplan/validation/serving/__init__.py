"""Speculative decoding for real: drafters and a target trained here (:mod:`edgeplan.validation.lm`), the
draft-verify-accept loop, the top-nσ sampler, and the acceptance profiles and timings the serving step uses."""
