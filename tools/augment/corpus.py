"""Corpora for the augmentation graph: load documents, split them into chunks an endpoint can take.

A corpus is a JSONL or Parquet file with a ``text`` field (an ``id`` field is kept when present), or
a folder of ``.txt``/``.md`` files. The offline default, ``stdlib-docs``, is real documentation that
ships with the interpreter: for each public module of Python's standard library, its module
docstring followed by the docstrings of its public classes and functions (read with ``ast``,
nothing imported), one document per module of at least 600 characters.
"""

from __future__ import annotations

import ast
import json
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CORPUS = "stdlib-docs"


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    source: str  # where it came from: a file path, or "stdlib-docs:<module>"


def load_corpus(spec: str | Path, min_chars: int = 1) -> list[Document]:
    """Documents from a JSONL/Parquet file, a folder of .txt/.md files, or ``stdlib-docs``.

    Errors name the file (and line or field) that cannot be read.
    """
    if str(spec) == DEFAULT_CORPUS:
        docs = stdlib_docs()
    else:
        path = Path(spec)
        if not path.exists():
            raise ValueError(f"corpus {spec}: no such file or folder (or use {DEFAULT_CORPUS})")
        if path.is_dir():
            docs = _folder(path)
        elif path.suffix == ".jsonl":
            docs = _jsonl(path)
        elif path.suffix == ".parquet":
            docs = _parquet(path)
        else:
            raise ValueError(f"corpus {spec}: expected .jsonl, .parquet or a folder of .txt/.md")
    docs = [d for d in docs if len(d.text.strip()) >= min_chars]
    if not docs:
        raise ValueError(f"corpus {spec}: no documents with text")
    ids = [d.doc_id for d in docs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"corpus {spec}: document ids repeat")
    return docs


def _folder(path: Path) -> list[Document]:
    files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".md") and p.is_file())
    return [
        Document(str(p.relative_to(path)), p.read_text(encoding="utf-8", errors="replace"), str(p))
        for p in files
    ]


def _jsonl(path: Path) -> list[Document]:
    docs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise ValueError(f"{path}:{n}: not JSON ({err})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError(f"{path}:{n}: needs a string field 'text'")
        docs.append(Document(str(row.get("id", n)), row["text"], f"{path}:{n}"))
    return docs


def _parquet(path: Path) -> list[Document]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise ValueError(f"{path}: no 'text' column (columns: {', '.join(table.column_names)})")
    texts = table.column("text").to_pylist()
    ids = table.column("id").to_pylist() if "id" in table.column_names else range(len(texts))
    return [
        Document(str(i), t, f"{path}#{n}")
        for n, (i, t) in enumerate(zip(ids, texts, strict=True))
        if isinstance(t, str)
    ]


def stdlib_docs(min_chars: int = 600) -> list[Document]:
    """One document per public standard-library module: its docstrings, in source order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for path in sorted(root.glob("*.py")):
        if path.name.startswith(("_", "test", "antigravity", "this.")):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        parts = [ast.get_docstring(tree) or ""]
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                text = ast.get_docstring(node) or ""
                if len(text) > 80:
                    parts.append(text)
        text = "\n\n".join(p.strip() for p in parts if p.strip())
        if len(text) >= min_chars:
            docs.append(Document(path.stem, text, f"{DEFAULT_CORPUS}:{path.stem}"))
    return docs


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (4 characters a token), enough to size chunks and budgets."""
    return max(1, len(text) // 4)


def chunk(text: str, max_tokens: int) -> list[str]:
    """Paragraph-aligned pieces of at most ``max_tokens`` (estimated); a paragraph longer than
    that is split at sentence ends, and a sentence longer than that at spaces. Joining the pieces
    with blank lines gives back the text's paragraphs.

    Example:
        >>> chunk("One. Two.\\n\\nThree.", max_tokens=3)
        ['One. Two.', 'Three.']
    """
    limit = max_tokens * 4
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return _pack([part for p in paragraphs for part in _fit(p, limit)], limit, "\n\n")


def _fit(paragraph: str, limit: int) -> list[str]:
    """A paragraph in pieces of at most ``limit`` characters: whole sentences where they fit,
    a sentence longer than that split at spaces."""
    if len(paragraph) <= limit:
        return [paragraph]
    parts = [
        piece
        for sentence in split_sentences(paragraph)
        for piece in (
            [sentence] if len(sentence) <= limit else _pack(sentence.split(" "), limit, " ")
        )
    ]
    return _pack(parts, limit, " ")


def _pack(parts: list[str], limit: int, sep: str) -> list[str]:
    """``parts`` joined with ``sep`` greedily into pieces of at most ``limit`` characters (a part
    longer than that stays whole)."""
    out, current = [], ""
    for part in parts:
        if current and len(current) + len(sep) + len(part) > limit:
            out.append(current)
            current = part
        else:
            current = f"{current}{sep}{part}" if current else part
    return [*out, current] if current else out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'`])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph (split after . ! ? before a capital, digit or quote).

    Example:
        >>> split_sentences("It runs. Then it stops! e.g. this stays.")
        ['It runs.', 'Then it stops! e.g. this stays.']
    """
    return [s for s in _SENTENCE_END.split(text.strip()) if s]
