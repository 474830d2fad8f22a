"""Backends: vLLM's and the OpenAI client's non-GPU parts here; the OpenAI backend against a real local server
(llama-cpp-python's OpenAI-compatible server with the SmolLM2 GGUF) when llama-cpp-python is installed."""

import importlib.util
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from augir.augmentation.backends import Sampling
from augir.augmentation.backends.openai_backend import OpenAIBackend, completion_from, request_arguments
from augir.augmentation.backends.vllm_backend import VllmBackend, completions_from, sampling_params_for
from augir.augmentation.prompts import Prompt
from augir.errors import AugirError

CHAT = Prompt(messages=(("system", "Write a title."), ("user", "Document: tides")))
TEXT = Prompt(text="Document: tides\nTitle:")


def test_vllm_sampling_params_carry_the_seed_and_stop_at_newline():
    params = sampling_params_for(Sampling(temperature=0.7, top_p=0.9, max_new_tokens=16), seed=42)
    assert params == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 16, "seed": 42, "stop": ["\n"]}
    assert sampling_params_for(Sampling(stop_at_newline=False), seed=1)["stop"] is None


def test_vllm_outputs_become_completions_in_order():
    outputs = [
        SimpleNamespace(outputs=[SimpleNamespace(text=" moon tides", token_ids=[5, 6])]),
        SimpleNamespace(outputs=[SimpleNamespace(text=" black holes", token_ids=[7, 8, 9])]),
    ]
    assert [(c.text, c.new_tokens) for c in completions_from(outputs)] == [(" moon tides", 2), (" black holes", 3)]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_missing_is_a_clear_error():
    with pytest.raises(AugirError, match=r"vllm is not installed"):
        VllmBackend.load("some/model", tensor_parallel_size=1, data_parallel_size=1, gpu_memory_utilization=0.9,
                         dtype="auto", seed=0)


def test_openai_request_for_completion_and_chat_prompts():
    sampling = Sampling(temperature=0.0, max_new_tokens=12)
    text = request_arguments("smol", TEXT, 7, sampling)
    assert text == {"model": "smol", "max_tokens": 12, "temperature": 0.0, "top_p": 1.0, "seed": 7,
                    "stop": ["\n"], "prompt": "Document: tides\nTitle:"}
    chat = request_arguments("smol", CHAT, 7, sampling)
    assert chat["messages"] == [{"role": "system", "content": "Write a title."}, {"role": "user", "content": "Document: tides"}]
    assert "prompt" not in chat


def test_openai_responses_become_completions():
    completion = SimpleNamespace(choices=[SimpleNamespace(text=" tides")], usage=SimpleNamespace(completion_tokens=2))
    chat = SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="Tides"))], usage=None)
    assert completion_from(completion).text == " tides" and completion_from(completion).new_tokens == 2
    assert completion_from(chat).text == "Tides" and completion_from(chat).new_tokens == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_openai_endpoint_down_is_a_one_line_error():
    backend = OpenAIBackend(base_url=f"http://127.0.0.1:{_free_port()}/v1", model="smol", api_key_env="AUGIR_TEST_KEY",
                            concurrency=2, timeout_s=2, max_retries=1)
    with pytest.raises(AugirError, match=r"augment\.openai\.base_url: cannot reach http://127\.0\.0\.1") as caught:
        backend.complete([TEXT], [0], Sampling(max_new_tokens=4))
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def llama_cpp_server():
    if importlib.util.find_spec("llama_cpp") is None:
        reason = 'llama-cpp-python is not installed (pip install "llama-cpp-python[server]"; it builds from source)'
        print(reason)
        pytest.skip(reason)
    from augir.augmentation.generators import gguf_location

    folder, filename = gguf_location("smollm2-135m")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(folder / filename), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}/v1"
    server.terminate()
    server.wait(timeout=30)


def test_openai_backend_against_a_real_llama_cpp_server(llama_cpp_server, monkeypatch):
    monkeypatch.setenv("AUGIR_TEST_KEY", "secret-key-value")
    backend = OpenAIBackend(base_url=llama_cpp_server, model="smollm2", api_key_env="AUGIR_TEST_KEY", concurrency=2,
                            timeout_s=60, max_retries=2)
    prompts = [Prompt(text=f"Document: {text}\nRelevant query:") for text in
               ["The moon's gravity raises the ocean tides.", "Insulin lets cells take up glucose."]]
    completions = backend.complete(prompts, [1, 2], Sampling(temperature=0.0, max_new_tokens=16))
    assert len(completions) == 2 and all(c.text.strip() and "\n" not in c.text for c in completions)
    assert all(c.new_tokens > 0 for c in completions)
    chat = backend.complete([CHAT], [3], Sampling(max_new_tokens=12))
    assert chat[0].text.strip()


def test_augment_through_the_server_never_writes_the_api_key(llama_cpp_server, monkeypatch, tmp_path, tiny_dataset):
    from augir.augmentation.augment import run_augmentation
    from augir.augmentation.backends import make_backend
    from augir.params import AugmentParams

    secret = "sk-augir-test-secret-0123456789"
    monkeypatch.setenv("AUGIR_TEST_KEY", secret)
    params = AugmentParams(dataset="tiny", backend="openai", generator="smollm2", num_passages=3,
                           max_new_tokens=12, openai={"base_url": llama_cpp_server, "api_key_env": "AUGIR_TEST_KEY"})
    stats = run_augmentation(tiny_dataset, params, tmp_path / "out", tmp_path / "work", make_backend(params))
    assert stats.generated == 3 and stats.new_tokens > 0
    written = "".join(path.read_text() for path in (tmp_path / "out").rglob("*") if path.is_file())
    written += str(stats.to_json_dict()) + params.model_dump_json()
    assert secret not in written and "AUGIR_TEST_KEY" in params.model_dump_json()


# ------------------------------------------------------------------------------------------ a misbehaving server


@pytest.fixture
def misbehaving_server():
    """A local OpenAI-compatible endpoint answering what `answers[mode]` says; counts the requests."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"mode": "invalid-json", "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            state["requests"] += 1
            self.rfile.read(int(self.headers["Content-Length"]))
            status, body = {
                "invalid-json": (200, b"{not json"),
                "no-choices": (200, json.dumps({"id": "x", "object": "text_completion"}).encode()),
                "echo-key": (401, json.dumps({"error": {"message": f"bad key {self.headers['Authorization']}"}}).encode()),
            }[state["mode"]]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1", state
    server.shutdown()


@pytest.mark.parametrize(("mode", "problem"), [("invalid-json", "a body that is not valid JSON"),
                                               ("no-choices", "a response without choices")])
def test_a_body_that_is_not_a_completion_is_retried_then_one_line_naming_the_url(misbehaving_server, mode, problem):
    pytest.importorskip("openai")
    url, state = misbehaving_server
    state["mode"] = mode
    backend = OpenAIBackend(base_url=url, model="smol", api_key_env="AUGIR_TEST_KEY", concurrency=1, timeout_s=5,
                            max_retries=1)
    with pytest.raises(AugirError) as caught:
        backend.complete([TEXT], [0], Sampling(max_new_tokens=4))
    assert str(caught.value) == f"augment.openai: {url}/completions answered {problem} (2 tries)"
    assert state["requests"] == 2  # retried like other server errors


def test_a_server_echoing_the_key_never_gets_it_printed(misbehaving_server, monkeypatch, tmp_path, tiny_beir_dir, capsys):
    pytest.importorskip("openai")
    from augir.cli import main

    url, state = misbehaving_server
    state["mode"] = "echo-key"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789-secret")
    status = main(["augment", "--dataset", str(tiny_beir_dir), "--backend", "openai", "--generator", "smol",
                   "--openai-base-url", url, "--num-passages", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after tqdm's progress bar
    assert status == 1 and last.startswith("augir: error: augment.openai:") and "answered 401" in last
    assert "sk-test-0123456789-secret" not in err and "Bearer [redacted]" in err


def test_openai_cache_prompt_is_sent_only_when_asked():
    asked = request_arguments("smol", TEXT, 7, Sampling(), cache_prompt=True)
    assert asked["extra_body"] == {"cache_prompt": True}
    assert "extra_body" not in request_arguments("smol", TEXT, 7, Sampling())
