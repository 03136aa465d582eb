"""Executors of sync schedules on real models: federated attention on a trained decoder, and cross-region
training with fragment synchronisation over paced loopback links."""
