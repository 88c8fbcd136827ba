"""The statistics of runs and comparisons: learning curves and the data-efficiency ratio,
the fitted multiplier and its interval, the three-arm headroom reading, the regression guard,
per-skill splits and the pilot's learnability table.

Rule: pure computation on values handed in. Imports only ``tools.records``, ``tools.packs`` (the
learnability table is checked against its pack) and this room; never the store (reading a
comparison's stores is ``tools.report.comparison``) nor a report.
"""
