"""Reading JSON out of an LLM's reply text (models wrap it in prose or code fences)."""

from __future__ import annotations

import json
import re


def json_object(text: str) -> dict:
    """The JSON object from the first ``{`` to the last ``}`` of ``text``.

    Raises:
        ValueError: saying what is wrong (no object, invalid JSON, not an object), in words fit
            to show the model in a repair prompt.

    Example:
        >>> json_object('Sure: {"name": "carry"}')
        {'name': 'carry'}
    """
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        raise ValueError("no JSON object in the reply")
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON ({err.msg})") from err
    if not isinstance(value, dict):
        raise ValueError("the JSON is not an object")
    return value
