"""Executors of fine-tuning plans: LoRA with quantized activations on real models, measured."""
