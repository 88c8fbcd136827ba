"""Text to vectors and what is computed on them: embeddings (MiniLM), FAISS clustering,
near-duplicate and contamination checks, and the named failure features added to a failure's
text before it is embedded.

Rule: imports only ``tools.records``, ``tools.verify`` (a feature compares answers as the
verifiers do) and this room.
"""
