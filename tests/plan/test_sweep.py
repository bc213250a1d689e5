"""Sweep expansion and precedence: defaults < scenario SWEEP < TOML < --set; values validated."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfbench.plan.sweep import (
    ConfigError,
    default_sweep,
    expand,
    load_config,
    parse_set,
    rerun_command,
    resolve_sweep,
)
from perfbench.results.axes import AXES, Amp, Device, Mode, Point

BACKENDS = ("eager", "compile")


def test_defaults_cover_every_axis():
    sweep = resolve_sweep([], BACKENDS)
    assert list(sweep) == list(AXES)
    assert sweep["backend"] == ["eager"] and sweep["amp"] == [Amp.OFF]
    assert sweep["mode"] == [Mode.INFER]
    assert len(expand(sweep)) == 1


def test_precedence_later_layers_win_per_axis(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[sweep]\nbatch_size = [4, 8]\namp = "bf16"\n[settings]\nbudget_s = 0.5\n')
    config_sweep, settings = load_config(config)
    assert settings == {"budget_s": 0.5}
    layers = [
        ("scenario SWEEP", {"backend": ["eager", "compile"], "batch_size": [1], "threads": [1]}),
        ("config", config_sweep),
        ("--set batch_size=16", {"batch_size": ["16"]}),
    ]
    sweep = resolve_sweep(layers, BACKENDS)
    assert sweep["backend"] == ["eager", "compile"]  # from the scenario
    assert sweep["amp"] == [Amp.BF16]  # from the config
    assert sweep["batch_size"] == [16]  # --set beats config beats scenario
    assert sweep["threads"] == [1]
    assert sweep["device"] == default_sweep()["device"] and sweep["device"][0] in ("cpu", "cuda")


@pytest.mark.parametrize(
    ("axis", "value", "listed"),
    [
        ("backend", "eagre", "eager, compile"),
        ("amp", "fp8", "off, bf16, fp16"),
        ("mode", "training", "infer, train"),
        ("device", "tpu", "cpu, cuda"),
    ],
)
def test_unknown_enum_values_list_the_valid_ones_and_name_the_source(axis, value, listed):
    with pytest.raises(ConfigError) as info:
        resolve_sweep([(f"--set {axis}={value}", {axis: [value]})], BACKENDS)
    assert listed in str(info.value)
    assert f"--set {axis}={value}" in str(info.value)


@pytest.mark.parametrize(
    ("axis", "value"),
    [("batch_size", "0"), ("batch_size", "x"), ("threads", "-1"), ("pin_memory", "maybe")],
)
def test_bad_scalar_values_are_usage_errors(axis, value):
    with pytest.raises(ConfigError, match=axis):
        resolve_sweep([("cli", {axis: [value]})], BACKENDS)


def test_parse_set():
    assert parse_set("batch_size=1,64") == ("batch_size", ["1", "64"])
    assert parse_set(" amp = off , bf16 ") == ("amp", ["off", "bf16"])
    with pytest.raises(ConfigError, match="AXIS=V1,V2"):
        parse_set("batch_size")
    with pytest.raises(ConfigError, match="unknown axis 'batchsize'"):
        parse_set("batchsize=1")
    with pytest.raises(ConfigError, match="no values"):
        parse_set("amp=")


def test_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep\n")
    with pytest.raises(ConfigError, match=str(bad)):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[sweep]\nbatch = [1]\n")
    with pytest.raises(ConfigError, match="unknown axis"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_bool_and_int_values_from_toml_are_parsed():
    sweep = resolve_sweep(
        [("toml", {"pin_memory": [True, False], "num_workers": [0, 2]})], BACKENDS
    )
    assert sweep["pin_memory"] == [True, False]
    assert sweep["num_workers"] == [0, 2]


@given(
    batch_sizes=st.lists(st.integers(1, 4096), min_size=1, max_size=4),
    amps=st.lists(st.sampled_from(["off", "bf16", "fp16"]), min_size=1, max_size=3),
    backends=st.lists(st.sampled_from(BACKENDS), min_size=1, max_size=2),
)
def test_expand_is_the_deduplicated_cartesian_product(batch_sizes, amps, backends):
    sweep = resolve_sweep(
        [("h", {"batch_size": [str(b) for b in batch_sizes], "amp": amps, "backend": backends})],
        BACKENDS,
    )
    points = expand(sweep)
    expected = {
        (b, bs, Amp(a))
        for b, bs, a in itertools.product(set(backends), set(batch_sizes), set(amps))
    }
    assert {(p.backend, p.batch_size, p.amp) for p in points} == expected
    assert len(points) == len(set(points))  # no duplicates
    assert points[0].backend == backends[0]  # backend is the outermost loop


def test_rerun_command_reproduces_the_point():
    point = Point(
        backend="compile", batch_size=64, amp=Amp.BF16, mode=Mode.TRAIN, device=Device.CPU
    )
    command = rerun_command("scenarios/my mlp.py", point, ["--budget", "1"])
    assert command.startswith("perfbench run 'scenarios/my mlp.py' --set backend=compile")
    for axis, value in point.as_dict().items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        assert f"--set {axis}={text}" in command
    assert command.endswith("--budget 1")
    # the command parses back into the same point
    parts = command.split("--set ")[1:]
    layers = [("cmd", dict([parse_set(p.split(" --")[0].strip())])) for p in parts]
    (again,) = expand(resolve_sweep(layers, BACKENDS))
    assert again == point
