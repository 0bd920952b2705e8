"""Scoring synthetic volumes: ``evaluate`` (subjects matched, metrics, reports), ``statistics``
(the paper's Wilcoxon signed-rank test) and ``plots`` (box plots)."""
