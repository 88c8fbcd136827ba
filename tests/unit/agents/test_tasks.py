"""The one helper every LLM role sends its requests through: render, call, tag, parse, repair."""

from failforward.agents.replies import json_value
from failforward.agents.tasks import Task, ask, raw


class Pack:
    def render(self, template, **variables):
        return f"{template}: {variables['q']}"


class Client:
    """Scripted replies by prompt; records every call's tags."""

    role = "critic"

    def __init__(self, script):
        self.script, self.calls = script, []

    def complete(self, prompts, temperature=None, tags=None, advance=None):
        self.calls.append((list(tags), temperature))
        if advance:
            advance(len(prompts))
        return [self.script(p) for p in prompts]


def _number(text):
    value = json_value(text)["n"]
    if not isinstance(value, int):
        raise ValueError("n is not a whole number")
    return value


def test_unusable_replies_are_repaired_with_the_error_until_the_repairs_run_out():
    def script(prompt):
        if prompt.startswith("Your reply"):  # a repair request: shows the reply and the error
            assert (
                "n is not a whole number" in prompt and "Reply again with only {n: int}" in prompt
            )
            return '{"n": 2}' if "judge: b" in prompt else "still not json"
        return {"judge: a": '{"n": 1}', "judge: b": '{"n": "two"}'}.get(prompt)

    client, advanced = Client(script), []
    task = Task("judge", parse=_number, tag="{key}/{attempt}", repairs=2, shape="{n: int}")
    requests = [("a", {"q": "a"}), ("b", {"q": "b"}), ("c", {"q": "c"})]
    a, b, c = ask(client, Pack(), task, requests, advanced.append)
    assert (a.value, a.requests) == (1, 1)
    assert (b.value, b.requests, b.error) == (2, 2, "")
    assert (c.value, c.requests, c.answered) == (None, 1, False)
    assert c.error == "the critic endpoint gave no reply"  # never answered: nothing to repair
    assert [tags for tags, _ in client.calls] == [["a/0", "b/0", "c/0"], ["b/1"]]
    assert advanced == [3]  # the progress bar counts first requests only


def test_a_reply_used_as_it_is_and_a_parser_given_template_variables():
    client = Client(lambda prompt: "text for " + prompt)
    plain = Task("rephrase", parse=raw, tag="{key}/rewrite", temperature=None)
    (reply,) = ask(client, Pack(), plain, [("k", {"q": "x"})])
    assert reply.value == "text for rephrase: x" and client.calls[-1] == (["k/rewrite"], None)

    def words(text, count):
        found = text.split()
        return found if len(found) == count else None

    counted = Task("rationales", parse=words, parse_uses=("count",))
    right, wrong = ask(
        client, Pack(), counted, [("a", {"q": "x", "count": 4}), ("b", {"q": "y", "count": 9})]
    )
    assert right.value == ["text", "for", "rationales:", "x"] and wrong.value is None
