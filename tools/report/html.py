"""``report.html``: the report's markdown turned into one self-contained page, with the figures
embedded as inline SVG (no other file, no script, no network)."""

from __future__ import annotations

import html
import re

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f3f3f3; padding: 0 0.2em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
.figures figure { margin: 0; flex: 1 1 480px; }
.figures svg { width: 100%; height: auto; }
"""


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def markdown_to_html(markdown: str) -> str:
    """The subset of markdown the reports write: headings, paragraphs, pipe tables."""
    out: list[str] = []
    table: list[list[str]] = []
    align: list[bool] = []

    def flush_table() -> None:
        if not table:
            return
        head, *rows = table
        out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>")
        for row in rows:
            cells = [
                f'<td class="num">{_inline(c)}</td>'
                if i < len(align) and align[i]
                else f"<td>{_inline(c)}</td>"
                for i, c in enumerate(row)
            ]
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-+:?", c) for c in cells):
                align[:] = [c.endswith(":") for c in cells]
            else:
                table.append(cells)
            continue
        flush_table()
        heading = re.match(r"(#{1,4}) (.*)", line)
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush_table()
    return "\n".join(out)


def page(title: str, markdown: str, figures: list[str]) -> str:
    """One HTML page: the title and what was run, the figures, then the report's tables and
    text (the figures go before the first section)."""
    body = markdown_to_html(markdown)
    figs = "".join(f"<figure>{svg}</figure>" for svg in figures if svg)
    split = body.find("<h2>")
    if split < 0:
        split = max(body.find("\n"), 0)
    head, rest = body[:split], body[split:]
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        f"{head}\n<div class='figures'>{figs}</div>\n{rest}\n</body></html>\n"
    )
