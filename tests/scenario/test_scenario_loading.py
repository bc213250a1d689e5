"""Scenario loading: pytest-quality errors naming the file and line, defaults per the contract."""

from __future__ import annotations

import pytest
import torch

from perfbench.scenario.loading import (
    ScenarioError,
    default_forward,
    default_optimizer,
    load_scenario,
    probe_scenario,
)
from tests.conftest import TINY_MLP


def test_loads_required_and_fills_defaults(write_scenario):
    scenario = load_scenario(write_scenario(TINY_MLP))
    assert scenario.name == "scenario"
    assert scenario.forward is default_forward
    assert scenario.build_optimizer is default_optimizer
    assert scenario.make_dataset is None and scenario.tolerance is None
    assert scenario.can_train
    assert scenario.sweep == {}
    probe_scenario(scenario)


def test_syntax_error_names_file_and_line_without_traceback(write_scenario):
    path = write_scenario("import torch\n\ndef build_model(:\n    pass\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: syntax error")
    assert "Traceback" not in message
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("source", "missing"),
    [
        ("def make_batch(n):\n    return None\n", "build_model"),
        ("def build_model():\n    return None\n", "make_batch"),
        ("x = 1\n", "build_model, make_batch"),
    ],
)
def test_missing_required_function_is_named(write_scenario, source, missing):
    path = write_scenario(source)
    with pytest.raises(ScenarioError, match=f"missing required function\\(s\\): {missing}"):
        load_scenario(path)


def test_exception_at_import_names_the_line(write_scenario):
    path = write_scenario("import torch\nCONFIG = {}\nSIZE = CONFIG['hidden']\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert f"{path}:3:" in str(info.value)
    assert "KeyError" in str(info.value)


@pytest.mark.parametrize(
    ("returned", "shown"),
    [
        ("[1, 2]", "list[int 1, int 2]"),
        ("'abc'", "str 'abc'"),
        ("{'x': 3.0}", "dict{'x': float 3.0}"),
        ("()", "tuple[]"),
    ],
)
def test_make_batch_returning_non_tensors_is_refused_with_what_it_returned(
    write_scenario, returned, shown
):
    path = write_scenario(
        f"import torch\ndef build_model():\n    return torch.nn.Identity()\n"
        f"def make_batch(n):\n    return {returned}\n"
    )
    scenario = load_scenario(path)
    with pytest.raises(ScenarioError) as info:
        probe_scenario(scenario)
    assert str(path) in str(info.value)
    assert shown in str(info.value)


def test_make_batch_accepts_tensor_tuple_and_dict(write_scenario):
    for returned in (
        "torch.ones(n, 2)",
        "(torch.ones(n, 2), torch.zeros(n))",
        "{'x': torch.ones(n)}",
    ):
        path = write_scenario(
            "import torch\ndef build_model():\n    return torch.nn.Identity()\n"
            f"def make_batch(n):\n    return {returned}\n"
        )
        probe_scenario(load_scenario(path))


def test_make_batch_exception_points_into_scenario(write_scenario):
    path = write_scenario(
        "import torch\ndef build_model():\n    return torch.nn.Identity()\n"
        "def make_batch(n):\n    return torch.ones(n) @ torch.ones(3, 3)\n"
    )
    with pytest.raises(ScenarioError) as info:
        probe_scenario(load_scenario(path))
    assert f"{path}:5:" in str(info.value)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("SWEEP = [1, 2]", "SWEEP must be a dict"),
        ("TOLERANCE = -1", "TOLERANCE must be a positive number"),
        ("TOLERANCE = 'tight'", "TOLERANCE must be a positive number"),
        ("forward = 3", "forward must be a function"),
    ],
)
def test_bad_optional_names(write_scenario, line, match):
    path = write_scenario(TINY_MLP + "\n" + line + "\n")
    with pytest.raises(ScenarioError, match=match):
        load_scenario(path)


def test_not_a_file_and_not_python(tmp_path):
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "nope.py")
    other = tmp_path / "s.txt"
    other.write_text("x")
    with pytest.raises(ScenarioError, match=r"\.py"):
        load_scenario(other)


def test_default_forward_dispatches_by_batch_type():
    calls = []

    class Recorder(torch.nn.Module):
        def forward(self, *args, **kwargs):
            calls.append((len(args), sorted(kwargs)))
            return args[0] if args else next(iter(kwargs.values()))

    model = Recorder()
    t = torch.ones(1)
    default_forward(model, t)
    default_forward(model, (t, t))
    default_forward(model, {"a": t, "b": t})
    assert calls == [(1, []), (2, []), (0, ["a", "b"])]
