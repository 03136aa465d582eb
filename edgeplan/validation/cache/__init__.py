"""Executors of CoCa plans: cached early exits on a real model, and the multi-period closed loop."""
