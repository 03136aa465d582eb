"""Methods for federated fine-tuning configuration (:mod:`edgeplan.formulations.finetune`)."""
