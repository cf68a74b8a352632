"""Early warning: caseload anomalies, overdue pile-ups, unstaffed grids (alerts) and the
平安指数 safety index.

``detector`` is pure numpy over unit × day matrices; ``data`` reads them from the rollups;
``lifecycle`` writes the ``alert`` table; ``safety`` computes the index.
"""
