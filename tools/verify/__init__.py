"""Verification: whether an answer is right, and running untrusted programs and queries.

Owns the verifiers (exact, numeric, reasoning-gym scorers, executed programs and SQL), the OS
sandbox for Python programs (bubblewrap, seccomp, resource limits) and the read-only SQL worker.
Everything an LLM or a pack writes that must run, runs through here and nowhere else.

Rule: imports nothing of the project but ``tools.records`` (and this room).
"""
