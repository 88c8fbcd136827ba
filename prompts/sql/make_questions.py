"""Write the sql pack's eval questions (questions.jsonl) from templates.yaml and clinical.db.

    python prompts/sql/make_questions.py          # from the repository root

Every template instance whose gold SQL runs and returns rows is a candidate (see
``tools.packs.sources.TemplateSource``); at most ``PER_TEMPLATE`` per template are kept, chosen
with a fixed seed, so the file covers every template and is the same every time.
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from failforward.tools.packs.sources import TemplateSource  # noqa: E402

PER_TEMPLATE = 6
SEED = 11


def main(out: Path = HERE / "questions.jsonl") -> Path:
    source = TemplateSource(HERE / "templates.yaml", HERE / "clinical.db")
    by_template = defaultdict(list)
    for item in source.items:
        by_template[item.metadata["template"]].append(item)
    rng = random.Random(SEED)
    chosen = []
    for name in sorted(by_template):
        items = by_template[name]
        chosen += rng.sample(items, min(PER_TEMPLATE, len(items)))
    rng.shuffle(chosen)
    out.write_text("".join(json.dumps(i.model_dump(), sort_keys=True) + "\n" for i in chosen))
    return out


if __name__ == "__main__":
    path = main()
    print(f"{path}: {sum(1 for _ in path.open())} questions")
