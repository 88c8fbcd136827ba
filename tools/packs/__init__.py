"""Prompt packs: the pack's spec and its loading (``pack``), its item sources and worked
solutions (``sources``, ``traces``), the checks of ``packs validate`` (``check``), the
composition check of a drawn set and the capacity of a cell (``composition``, ``capacity``).

Rule: imports only ``tools.records``, ``tools.verify``, ``tools.embed`` and this room; never the
store, statistics or reports.
"""
