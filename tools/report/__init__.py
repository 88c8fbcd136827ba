"""What a person reads: the run and comparison reports (Markdown and HTML), their figures, and
a comparison's folder read back from its run stores.

Rule: the top of ``tools``: may import any other room, the store and the records; nothing in
``tools`` imports it.
"""
