"""Training loggers as plugins: the JSONL metrics log, PNG sample grids, TensorBoard."""
