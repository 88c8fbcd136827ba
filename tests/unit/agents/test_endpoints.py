import pytest

from failforward.agents.endpoint_settings import endpoints_from_file, endpoints_from_flag
from failforward.agents.endpoints import CallFailed, ChatClient, EndpointConfig
from failforward.tools.store import RunStore
from tests.fake_endpoint import FakeEndpoint
from tests.fakes import FakeSend


def test_none_means_no_roles():
    assert endpoints_from_flag("none") == {}


def test_one_url_for_every_role(monkeypatch):
    monkeypatch.setenv("OPENAI_MODEL", "gpt-test")
    configs = endpoints_from_flag("http://127.0.0.1:8000/v1")
    assert set(configs) == {"teacher", "critic", "analyst"}
    assert configs["teacher"].model == "gpt-test"


def test_urls_and_models_per_role():
    configs = endpoints_from_flag(
        "teacher=https://a/v1,analyst=http://b/v1", "teacher=big,analyst=small"
    )
    assert configs["teacher"].base_url == "https://a/v1" and configs["teacher"].model == "big"
    assert configs["analyst"].model == "small" and "critic" not in configs


@pytest.mark.parametrize(
    ("llm", "model", "message"),
    [
        ("ftp://x", "m", "not none, local"),
        ("judge=http://x/v1", "m", "unknown role 'judge'"),
        ("http://x/v1", "", "no model name"),
    ],
)
def test_bad_flags_are_named(llm, model, message, monkeypatch):
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(ValueError, match=message):
        endpoints_from_flag(llm, model)


@pytest.fixture
def recording_server():
    """A loopback HTTP endpoint that answers chat completions and records request headers."""
    with FakeEndpoint(lambda prompt: "3 + 4 = 7", usage=(5, 4)) as stub:
        yield stub.base_url, stub.headers


def test_api_key_is_sent_from_the_environment_and_never_stored(
    tmp_path, monkeypatch, recording_server
):
    url, seen = recording_server
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    store = RunStore(tmp_path / "run.db")
    config = EndpointConfig(base_url=url, model="m", api_key_env="MY_KEY", retries=0)
    assert ChatClient("teacher", config, store).complete(["Write a sum."]) == ["3 + 4 = 7"]
    assert seen[0]["authorization"] == "Bearer sk-secret-123"
    assert store.token_usage() == {"teacher": {"calls": 1, "prompt": 5, "completion": 4}}
    store.set_meta("endpoints", {"teacher": config.public()})
    store.close()
    assert b"sk-secret-123" not in (tmp_path / "run.db").read_bytes()


def test_failed_requests_are_recorded_not_cached(tmp_path):
    down = FakeSend(fail=lambda prompt: CallFailed("connection", "endpoint down", retryable=True))
    store = RunStore(tmp_path / "run.db")
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", retries=1, backoff=0)
    client = ChatClient("teacher", config, store, send=down)
    assert client.complete(["p", "q"], tags=["c1-a", "c1-b"]) == [None, None]
    assert down.calls == 4  # one retry each, then given up
    assert len(client.errors) == 2 and "endpoint down" in client.errors[0]
    assert client.faults == {"connection": 4} and client.retried == 2
    assert store.token_usage() == {}  # nothing cached, so a resume asks again
    assert [(f["role"], f["tag"], f["kind"]) for f in store.call_failures()] == [
        ("teacher", "c1-a", "connection"),
        ("teacher", "c1-b", "connection"),
    ]


def test_env_flag_reads_openai_base_url(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_MODEL", "m")
    assert endpoints_from_flag("env")["critic"].base_url == "http://127.0.0.1:8000/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(ValueError, match="OPENAI_BASE_URL"):
        endpoints_from_flag("env")


def test_endpoint_file_per_role_settings(tmp_path):
    path = tmp_path / "endpoints.yaml"
    path.write_text(
        "teacher: {base_url: 'http://a/v1', model: big, api_key_env: TOGETHER_KEY, concurrency: 8,"
        " timeout: 60, retries: 3}\nanalyst: {base_url: 'http://b/v1', model: small}\n"
    )
    configs = endpoints_from_file(path)
    assert configs["teacher"].concurrency == 8 and configs["teacher"].api_key_env == "TOGETHER_KEY"
    assert configs["analyst"].retries == 3  # the default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("judge: {base_url: 'http://a/v1', model: m}", "judge: unknown role"),
        ("teacher: {base_url: 'http://a/v1', model: m, concurrency: 0}", "teacher.concurrency"),
        ("teacher: {model: m}", "teacher.base_url"),
    ],
)
def test_endpoint_file_errors_name_file_and_field(tmp_path, text, message):
    path = tmp_path / "endpoints.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        endpoints_from_file(path)
    assert str(path) in str(err.value)
