"""Executors of SLIDE plans: layer-wise download while inferring, paced over loopback."""
