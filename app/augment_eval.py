"""``failforward augment-eval``: does augmented text teach the student more per token?

From one augmentation run, continued pretraining of fresh copies of the student on equal token
budgets of: real-only (the run's real chunks, repeated as needed), real + rephrases, real +
megadocs (stitch), and real + stretched documents when the run made rationales; each mix at the
run's real share. Reported: the loss on the run's held-out documents (never rewritten, never
trained on) per arm, its difference from real-only's at the same tokens, and each augmented arm's
implied data-efficiency: the real-only tokens needed to reach its loss (read off a real-only curve
at 1/4, 1/2, 1 and 2 times the budget, linear in log-tokens), divided by the budget. The ratio is
left undefined when the real-only curve rises anywhere (repeating a small real corpus overfits);
the equal-token difference always holds.

Each arm's result is written to ``augment_eval.partial.json`` as it finishes; a run of the same
command (same student, budget, block, learning rate and seed) after a crash or Ctrl-C trains only
the arms that had not finished.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from failforward.tools.augment.assemble import Row, assemble, mix, token_shares

SCALES = (0.25, 0.5, 1.0, 2.0)


def arm_rows(store, real_share: float, seed: int) -> dict[str, list[Row]]:
    """Training documents per arm (arms without synthetic rows are left out)."""
    units, accepted, notes = store.assembly_inputs()
    arms = {"real-only": [Row(u.text, "real", u.doc_id) for u in units]}
    for name, mode in (("real+rephrases", "rephrase"), ("real+megadocs", "stitch"),
                       ("real+stretch", "stretch")):  # fmt: skip
        rows = assemble(units, accepted, notes, mode)
        if rows:
            arms[name] = mix(units, rows, real_share, seed)
    return arms


def implied_ratio(
    curve: list[tuple[int, float]], loss: float, budget: int
) -> tuple[float | None, str]:
    """Real-only tokens to reach ``loss`` (linear in log-tokens between curve points) over the
    budget, with a note: ``""``; ``"censored"`` when the curve never gets that low (the value is
    its last point's, a lower bound); ``"rising"`` (value None) when the real-only loss goes up
    somewhere along the curve (more passes over the same real text overfit), so "the tokens
    needed to reach a loss" has no single answer; compare at equal tokens instead.

    Example:
        >>> implied_ratio([(1000, 3.0), (2000, 2.8), (4000, 2.9)], 2.9, 2000)
        (None, 'rising')
    """
    points = sorted(curve)
    if any(l1 > l0 for (_, l0), (_, l1) in zip(points, points[1:], strict=False)):
        return None, "rising"
    for (t0, l0), (t1, l1) in zip(points, points[1:], strict=False):
        if l0 > loss >= l1:
            share = (l0 - loss) / (l0 - l1)
            tokens = math.exp(math.log(t0) + share * (math.log(t1) - math.log(t0)))
            return tokens / budget, ""
    if points and loss >= points[0][1]:
        return points[0][0] / budget, ""  # reached already at the smallest budget: at most
    return points[-1][0] / budget, "censored"


def augment_eval(
    run_dir: Path,
    student: str = "tiny",
    tokens: int = 40_000,
    block: int = 128,
    lr: float = 5e-4,
    seed: int = 0,
    ui=None,
) -> dict:
    """Train and score every arm; write ``augment_eval.json`` and ``augment_eval.md``."""
    from failforward.app.progress import LoopUI
    from failforward.training.student_model import resolve_student

    ui = ui or LoopUI()
    run_dir = Path(run_dir)
    if not (run_dir / "augment.db").is_file():
        raise FileNotFoundError(f"{run_dir}: no augment.db (not an augmentation run folder)")
    if tokens < block:
        raise ValueError(f"--tokens {tokens}: less than one block of {block}")
    heldout, arms = _inputs(run_dir, seed)
    key = {"student": student, "budget": tokens, "block": block, "lr": lr, "seed": seed}
    partial = run_dir / "augment_eval.partial.json"
    trainer = _ArmTrainer(resolve_student(student), heldout, key, partial, ui)
    results: dict = {
        "student": student,
        "budget": tokens,
        "block": block,
        "lr": lr,
        "heldout_documents": len(heldout),
        "base_heldout_loss": trainer.base_loss(),
        "real_only_curve": [
            trainer.train(arms["real-only"], int(tokens * scale), f"real-only x{scale:g}")
            for scale in SCALES
        ],
    }
    real_only = results["real_only_curve"][SCALES.index(1.0)]
    results["arms"] = {"real-only": real_only}
    curve = [(r["tokens"], r["heldout_loss"]) for r in results["real_only_curve"]]
    for name, rows in arms.items():
        if name != "real-only":
            row = trainer.train(rows, tokens, name)
            row["implied_ratio"], row["ratio_note"] = implied_ratio(
                curve, row["heldout_loss"], row["tokens"]
            )
            row["loss_vs_real_only"] = row["heldout_loss"] - real_only["heldout_loss"]
            results["arms"][name] = row
    (run_dir / "augment_eval.json").write_text(json.dumps(results, indent=2))
    (run_dir / "augment_eval.md").write_text(render(results))
    partial.unlink(missing_ok=True)
    return results


class _ArmTrainer:
    """Trains fresh copies of the student, one arm at a time; each arm's result goes to the
    partial file as it finishes, and an arm found there (same ``key``) is not trained again."""

    def __init__(self, base: Path, heldout: list[str], key: dict, partial: Path, ui):
        self.base, self.heldout, self.key, self.partial, self.ui = base, heldout, key, partial, ui
        self.done = _kept_arms(partial, key, ui)

    def base_loss(self) -> float:
        from failforward.training.pretrain import loss_on
        from failforward.training.student_model import load_student

        model, tokenizer = load_student(self.base)
        return loss_on(model, tokenizer, self.heldout, self.key["block"])

    def train(self, rows: list[Row], budget: int, label: str) -> dict:
        from failforward.training.pretrain import loss_on, pretrain
        from failforward.training.student_model import load_student

        if label in self.done:
            return self.done[label]
        block, texts = self.key["block"], [r.text for r in rows]
        model, tokenizer = load_student(self.base)
        lr, seed = self.key["lr"], self.key["seed"]
        with self.ui.task(f"{label}: {budget} tokens", total=None) as bar:
            result = pretrain(model, tokenizer, texts, budget, block, lr=lr, seed=seed,
                              on_step=lambda s, n: bar.update(s, n))  # fmt: skip
        self.done[label] = {
            "tokens": result.tokens,
            "steps": result.steps,
            "heldout_loss": loss_on(model, tokenizer, self.heldout, block),
            "train_loss_last": result.last_loss,
            "seconds": result.seconds,
            "documents": len(rows),
            "synthetic_share": 1.0 - token_shares(rows).get("real", 0.0),
        }
        staged = self.partial.with_suffix(".tmp")
        staged.write_text(json.dumps({"key": self.key, "rows": self.done}, indent=2))
        staged.replace(self.partial)
        return self.done[label]


def _inputs(run_dir: Path, seed: int) -> tuple[list[str], dict[str, list[Row]]]:
    """An augmentation run's held-out chunks and each arm's training rows."""
    from failforward.graph.settings import AugmentSettings
    from failforward.tools.augment.store import AugmentStore

    store = AugmentStore(run_dir / "augment.db")
    try:
        settings = AugmentSettings.from_dict(store.get_meta("settings"))
        heldout = list(store.chunks("heldout").values())
        arms = arm_rows(store, settings.real_share, seed)
    finally:
        store.close()
    if not heldout:
        raise ValueError(f"{run_dir}: the run held out no documents (--heldout 0)")
    return heldout, arms


def _kept_arms(partial: Path, key: dict, ui) -> dict[str, dict]:
    """The arms an interrupted evaluation with the same ``key`` already trained."""
    if not partial.is_file():
        return {}
    saved = json.loads(partial.read_text())
    if saved.get("key") != key:
        return {}
    ui.log(f"augment-eval: {len(saved['rows'])} arm(s) already trained, kept from {partial.name}")
    return saved["rows"]


def render(results: dict) -> str:
    lines = [
        "# augment-eval",
        "",
        f"student `{results['student']}`, {results['budget']} training tokens per arm (blocks of"
        f" {results['block']}, lr {results['lr']:g}), loss on {results['heldout_documents']}"
        f" held-out documents; untrained: {results['base_heldout_loss']:.4f}.",
        "",
        "| arm | documents | synthetic share | tokens | steps | held-out loss | vs real-only |"
        " implied data efficiency |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["arms"].items():
        if name == "real-only":
            ratio, delta = "1 (baseline)", "-"
        else:
            delta = f"{row['loss_vs_real_only']:+.4f}"
            if row["ratio_note"] == "rising":
                ratio = "n/a (real-only curve rises)"
            else:
                bound = "> " if row["ratio_note"] == "censored" else ""
                ratio = f"{bound}{row['implied_ratio']:.2f}x"
        lines.append(
            f"| {name} | {row['documents']} | {row['synthetic_share']:.0%} | {row['tokens']} |"
            f" {row['steps']} | {row['heldout_loss']:.4f} | {delta} | {ratio} |"
        )
    lines += ["", "Real-only curve (held-out loss against tokens):", ""]
    lines += [
        f"- {r['tokens']} tokens: {r['heldout_loss']:.4f}" for r in results["real_only_curve"]
    ]
    return "\n".join(lines) + "\n"
