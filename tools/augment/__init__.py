"""Corpus augmentation (``failforward augment``): the source corpus, the augmentation pack,
its tables in the run store, and the assembled corpus (rephrase, stitch, stretch).

Rule: imports only ``tools.records``, ``tools.store``, ``tools.packs`` and this room.
"""
