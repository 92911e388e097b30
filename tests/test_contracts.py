"""One contract suite over every registry, in the spirit of scikit-learn's
``parametrize_with_checks``: each registered LLM backend, executor, guardrail, embedder, uplift
learner, policy and delivery channel is built from its registry by name and put through the same
checks (the contract's attributes, then behaviour on a tiny real input).

The parametrisation reads the registries when this file is imported, so a component registered by
a module of the package is covered with no line added here. ``test_a_new_*`` show it: each
registers one small real component through the registry's public function, checks that the
listing the parametrisation reads now names it, runs the same check on it and unregisters it
(the components are in contract_components.py)
(the guardrail registry is global: a test guardrail left in it would run inside every copy check).

Heavy components are checked cheaply: the GGUF backends and the OpenAI-compatible one only as far
as building them and their refusal without a model or server (generation is in
test_llm_backends.py), Ray only under ``-m slow``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from contract_components import (  # tests/ is on sys.path, as for delivery_servers
    CharHashEmbedder,
    DifferenceOfMeans,
    EchoBackend,
    EpsilonGreedy,
    ListChannel,
    SerialExecutor,
    Tripler,
    email_message,
    shouting,
    sms_message,
)
from sklearn.ensemble import HistGradientBoostingRegressor

from adpilot.backends.executor import (
    Executor,
    Stage,
    available_executors,
    get_executor,
    read_parquet_parts,
    register_executor,
    unregister_executor,
)
from adpilot.backends.llm import (
    Completion,
    GenerationParams,
    LLMBackend,
    LLMError,
    Message,
    Usage,
    available_backends,
    get_backend,
    register_backend,
    unregister_backend,
)
from adpilot.delivery.base import (
    Receipt,
    available_channels,
    get_channel,
    register_channel,
    unregister_channel,
)
from adpilot.errors import MissingDependencyError, NotFittedError
from adpilot.generation import GuardContext, channel_spec, load_brand
from adpilot.generation.guardrails import GUARDRAILS, guardrail
from adpilot.optimization.policies import (
    POLICIES,
    Policy,
    policy_from_state,
    register_policy,
    unregister_policy,
)
from adpilot.profiling.embeddings import (
    EMBEDDERS,
    get_embedder,
    register_embedder,
    unregister_embedder,
)
from adpilot.targeting.uplift import LEARNERS, make_learner, register_learner, unregister_learner

TEXTS = ["Soft linen shirt, cool in summer", "The linen shirt shrank after one wash",
         "透气亚麻衬衫，夏天清爽", "亚麻衬衫洗了一次就缩水", "Fast delivery, the shirt fits well",
         "快递很快，衬衫很合身", "Colour faded after a week", "颜色一周就褪了",
         "Great value for a linen shirt", "亚麻衬衫性价比很高"] * 2


# --- LLM backends ------------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nobody listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _backend_options(name: str, tmp_path: Path) -> tuple[dict, str | None]:
    """Constructor options and, for a backend that cannot answer cheaply here, why it is only
    built and asked to refuse (None: it must answer)."""
    if name in ("llamacpp", "llama-cpp-python"):
        return {"model": tmp_path / "missing.gguf"}, "runs a GGUF model (generation: test_llm_backends)"
    if name == "openai":
        return ({"base_url": f"http://127.0.0.1:{_closed_port()}/v1", "max_retries": 0,
                 "timeout": 2}, "needs an OpenAI-compatible server (tested against llama.cpp's)")
    if name == "transformers":
        pytest.importorskip("transformers")
        from test_llm_backends import tiny_gpt2

        return {"model_dir": tiny_gpt2(tmp_path / "tiny-gpt2")}, None
    return {}, None


def check_llm_backend(name: str, tmp_path: Path) -> None:
    options, cannot_answer = _backend_options(name, tmp_path)
    try:
        backend = get_backend(name, **options)
    except MissingDependencyError as exc:
        pytest.skip(f"{name}: {exc}")
    assert isinstance(backend, LLMBackend) and name in available_backends()
    assert isinstance(backend.name, str) and backend.name != "?"
    assert isinstance(backend.remote, bool) and isinstance(backend.model_id, str) and backend.model_id
    convo = [Message("system", "Be brief."), Message("user", "Name a summer fabric.")]
    params = GenerationParams(max_tokens=6, temperature=0.0, seed=0)
    if cannot_answer:  # the refusal is the backend's own error type, naming what is missing
        with pytest.raises((LLMError, MissingDependencyError)):
            backend.complete(convo, params)
        return
    try:
        first, again = backend.complete(convo, params), backend.complete(convo, params)
        many = backend.complete_many([convo, [Message("user", "Say yes.")]], params)
    finally:
        backend.close()
    assert isinstance(first, Completion) and isinstance(first.text, str)
    assert isinstance(first.usage, Usage) and first.usage.completion_tokens >= 0
    assert first.text == again.text  # greedy with a seed: the same reply
    assert len(many) == 2 and all(isinstance(c, Completion) for c in many)
    assert many[0].text == first.text  # complete_many keeps the order of its inputs


@pytest.mark.parametrize("name", available_backends())
def test_llm_backend_contract(name, tmp_path):
    check_llm_backend(name, tmp_path)


# --- executors ---------------------------------------------------------------------------------

EXECUTOR_OPTIONS = {"ray": {"num_cpus": 1, "num_actors": 1, "object_store_memory": 256 << 20,
                            "show_progress": False}}


def check_executor(name: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(10)], "x": np.arange(10)})
    stage = Stage("triple", Tripler, {"factor": 3}, batch_size=3)
    try:
        executor = get_executor(name, **EXECUTOR_OPTIONS.get(name, {}))
    except MissingDependencyError as exc:
        pytest.skip(f"{name}: {exc}")
    if name == "ray":  # Ray's workers cannot import tests/: send the stage class by value
        import contract_components
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(contract_components)
    with executor:
        assert isinstance(executor, Executor) and executor.name == name
        out = executor.map_batches(stage, frame)
        parts = executor.to_parquet(stage, frame, tmp_path / "out")
        batches = list(executor.iter_batches(stage, frame))
    assert out["id"].tolist() == frame["id"].tolist()  # every row once, in input order
    assert out["y"].tolist() == (frame["x"] * 3).tolist()
    assert read_parquet_parts(parts)["id"].tolist() == frame["id"].tolist()
    assert sum(map(len, batches)) == 10


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "ray" else n
                                  for n in available_executors()])
def test_executor_contract(name, tmp_path):
    check_executor(name, tmp_path)


# --- guardrails --------------------------------------------------------------------------------

def _is_reason(item: object) -> bool:
    """A reason string, or a violation object naming its check and reason."""
    return isinstance(item, str) or (hasattr(item, "check") and hasattr(item, "reason"))


def check_guardrail(name: str) -> None:
    check = GUARDRAILS[name]
    ctx = GuardContext(channel_spec("sms", "en"), load_brand(), facts="Linen shirt")
    # sentences under 20 characters: the complaint check judges them without its model
    normal = {"text": "Soft linen shirt. Cool all summer. Shop now!"}
    for fields in ({"text": ""}, normal):
        result = check(fields, ctx)
        assert isinstance(result, list) and all(map(_is_reason, result)), (name, result)
        assert check(fields, ctx) == result  # no hidden state between calls


@pytest.mark.parametrize("name", sorted(GUARDRAILS))
def test_guardrail_contract(name):
    check_guardrail(name)


# --- embedders ---------------------------------------------------------------------------------

EMBEDDER_OPTIONS = {"lsa": {"dim": 8}}


def check_embedder(name: str) -> None:
    try:
        embedder = get_embedder(name, **EMBEDDER_OPTIONS.get(name, {}))
        vecs = embedder.encode(TEXTS)
    except MissingDependencyError as exc:
        pytest.skip(f"{name}: {exc}")
    assert embedder.name == name
    assert vecs.ndim == 2 and len(vecs) == len(TEXTS) and vecs.shape[1] >= 2
    if hasattr(embedder, "dim"):
        assert vecs.shape[1] == embedder.dim
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.encode(TEXTS[:3]), vecs[:3], atol=1e-5)  # batch-invariant


@pytest.mark.parametrize("name", sorted(EMBEDDERS))
def test_embedder_contract(name):
    check_embedder(name)


# --- uplift learners ---------------------------------------------------------------------------

def _experiment(n: int = 2000, seed: int = 0):
    """A randomised three-arm test: arm A lifts the rate by 0.3, arm B does nothing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    t = rng.choice(["ctl", "A", "B"], n)
    y = (rng.random(n) < 0.2 + 0.3 * (t == "A")).astype(float)
    return x, t, y


# the built-in learners with small boosted trees: their default models are what
# test_targeting.py measures; here the contract, in seconds
LEARNER_OPTIONS = {n: {"base_model": HistGradientBoostingRegressor(max_iter=20, max_depth=2,
                                                                    random_state=0)}
                   for n in ("t", "x", "dr")}


def check_uplift_learner(name: str) -> None:
    x, t, y = _experiment()
    options = LEARNER_OPTIONS.get(name, {})
    learner = make_learner(name, control="ctl", seed=0, **options)
    with pytest.raises(NotFittedError):
        learner.predict_uplift(x[:5])
    assert learner.fit(x, t, y) is learner
    up = learner.predict_uplift(x[:200])
    assert sorted(learner.treatments_) == ["A", "B"] and up.shape == (200, 2)
    a, b = learner.treatments_.index("A"), learner.treatments_.index("B")
    assert up[:, a].mean() > up[:, b].mean() + 0.15  # finds the arm that works
    again = make_learner(name, control="ctl", seed=0, **options).fit(x, t, y).predict_uplift(x[:200])
    np.testing.assert_array_equal(up, again)  # deterministic under a seed


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_uplift_learner_contract(name):
    check_uplift_learner(name)


# --- policies ----------------------------------------------------------------------------------

def check_policy(kind: str) -> None:
    extra = {"dim": 3} if kind == "linear_thompson" else {}
    policy = policy_from_state({"kind": kind, "arms": ["a", "b", "c"], **extra})
    context = np.ones(3) if extra else None
    rng = np.random.default_rng(0)
    assert isinstance(policy, Policy) and policy.kind == kind
    for _ in range(30):
        p = policy.probabilities(context)
        assert len(p) == len(policy.arms) and (p >= 0).all() and p.sum() == pytest.approx(1.0)
        arm, prop = policy.choose(rng, context)
        # Thompson propensities are Monte Carlo estimates: equal within their sampling error
        assert arm in policy.arms and prop == pytest.approx(p[policy.arms.index(arm)], abs=0.05)
        policy.update(arm, float(arm == "b"), context)
    policy.add_arm("d")
    assert policy.probabilities(context).sum() == pytest.approx(1.0) and len(policy.arms) == 4
    rebuilt = policy_from_state(policy.state())  # what the store keeps brings it back
    assert rebuilt.state() == policy.state()


@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_policy_contract(kind):
    check_policy(kind)


# --- delivery channels -------------------------------------------------------------------------

@contextmanager
def channel_setup(name: str, tmp_path: Path) -> Iterator[tuple[dict, Callable, Callable | None]]:
    """(options, message maker, count of messages the far side holds) for ``name``; the file
    channel gets a temp outbox, smtp and webhook real servers on 127.0.0.1."""
    if name == "file":
        yield {"outbox": tmp_path}, email_message, lambda: len(list(tmp_path.glob("*.eml")))
    elif name in ("smtp", "webhook"):
        pytest.importorskip("aiosmtpd")
        from delivery_servers import GatewayServer, SMTPServer

        from adpilot.delivery.mime import Sender

        if name == "smtp":
            sender = Sender(from_addr="Acme <news@acme.example>", postal_address="1 Market St",
                            public_url="https://acme.example", link_secret="contract-secret")
            with SMTPServer() as server:
                yield ({"url": server.url, "sender": sender}, email_message,
                       lambda: len(server.handler.received))
        else:
            with GatewayServer("gateway-secret") as server:
                yield ({"url": server.url, "secret": "gateway-secret"}, sms_message,
                       lambda: len(server.gateway.delivered))
    else:  # a channel this file does not know: built without options, sent an e-mail
        with nullcontext():
            yield {}, email_message, None


def check_channel(name: str, tmp_path: Path) -> None:
    with channel_setup(name, tmp_path) as (options, make, held):
        channel = get_channel(name, **options)
        assert channel.name == name and isinstance(channel.idempotent, bool)
        try:
            receipts = [channel.deliver(make(i)) for i in range(2)]
        finally:
            channel.close()
        for i, r in enumerate(receipts):
            assert isinstance(r, Receipt) and r.status == "sent", r
            assert r.message_id == make(i).message_id
        if held is not None:
            assert held() == 2  # each message reached the far side once


@pytest.mark.parametrize("name", available_channels())
def test_channel_contract(name, tmp_path):
    check_channel(name, tmp_path)


# --- a new component of each kind is covered as soon as it is registered -----------------------


@contextmanager
def registered(add, remove, name: str, component):
    add(component)
    try:
        yield name
    finally:
        remove(name)


def test_a_new_llm_backend_is_covered(tmp_path):
    with registered(register_backend("test-echo"), unregister_backend, "test-echo", EchoBackend):
        assert "test-echo" in available_backends()
        check_llm_backend("test-echo", tmp_path)


def test_a_new_executor_is_covered(tmp_path):
    with registered(register_executor("test-serial"), unregister_executor, "test-serial",
                    SerialExecutor):
        assert "test-serial" in available_executors()
        check_executor("test-serial", tmp_path)


def test_a_new_guardrail_is_covered():
    with registered(guardrail("test-shouting"), GUARDRAILS.pop, "test-shouting", shouting):
        assert "test-shouting" in GUARDRAILS
        check_guardrail("test-shouting")
        assert shouting({"text": "HUGE sale TODAY"}, None) == [
            "'TODAY' is shouted: write it in lower case"]
    assert "test-shouting" not in GUARDRAILS


def test_a_new_embedder_is_covered():
    with registered(register_embedder("test-charhash"), unregister_embedder, "test-charhash",
                    CharHashEmbedder):
        assert "test-charhash" in EMBEDDERS
        check_embedder("test-charhash")


def test_a_new_uplift_learner_is_covered():
    with registered(register_learner("test-dom"), unregister_learner, "test-dom",
                    DifferenceOfMeans):
        assert "test-dom" in LEARNERS
        check_uplift_learner("test-dom")


def test_a_new_policy_is_covered():
    with registered(register_policy, unregister_policy, "test_epsilon_greedy",
                    EpsilonGreedy):
        assert "test_epsilon_greedy" in POLICIES
        check_policy("test_epsilon_greedy")


def test_a_new_channel_is_covered(tmp_path):
    with registered(register_channel("test-list"), unregister_channel, "test-list", ListChannel):
        assert "test-list" in available_channels()
        ListChannel.sent.clear()
        check_channel("test-list", tmp_path)
        assert len(ListChannel.sent) == 2
