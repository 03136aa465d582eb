"""Export formats, one module per format; each registers with :func:`edgeplan.registry.exporter`."""
