"""The domain core under the agents: records, options, the run store, and six rooms.

Top level: ``records`` (the typed records every layer passes), ``options`` (how a setting is
declared), ``store`` (the run store). Rooms, each with its rule in its docstring and enforced by
``tests/unit/test_layers.py``: ``verify``, ``embed``, ``packs``, ``stats``, ``augment``,
``report`` (from the bottom: a room imports only rooms before it in this list, except as its
docstring says).
"""
