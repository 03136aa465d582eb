"""Executors of partition plans on real torch models: split inference over emulated links, pipelines over gloo."""
