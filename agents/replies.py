"""Reading JSON out of an LLM's reply text (models wrap it in prose or code fences)."""

from __future__ import annotations

import json
import re
from typing import Any

_SPANS = {dict: (r"\{.*\}", "object", "an object"), list: (r"\[.*\]", "list", "a list")}


def json_value(text: str, kind: type[dict] | type[list] = dict) -> Any:
    """The JSON object (``kind=dict``: from the first ``{`` to the last ``}`` of ``text``) or list
    (``kind=list``: from the first ``[`` to the last ``]``) in a reply. Every role reads its
    JSON through this.

    Raises:
        ValueError: saying what is wrong (none there, invalid JSON, another kind), in words fit
            to show the model in a repair prompt.

    Example:
        >>> json_value('Sure: {"name": "carry"}')
        {'name': 'carry'}
        >>> json_value('Here: ["a", "b"] done', list)
        ['a', 'b']
    """
    pattern, noun, with_article = _SPANS[kind]
    match = re.search(pattern, text, re.DOTALL)
    if not match:
        raise ValueError(f"no JSON {noun} in the reply")
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON ({err.msg})") from err
    if not isinstance(value, kind):
        raise ValueError(f"the JSON is not {with_article}")
    return value


def json_object(text: str) -> dict:
    """The JSON object in a reply (:func:`json_value` with ``kind=dict``)."""
    return json_value(text, dict)
