"""`perfbench check` on the terminal (cli_check.py): exit codes, the table, load errors on stderr."""

from __future__ import annotations

from perfbench.cli.check import check_main


def test_check_main_exit_codes(scenario_from, tmp_path, capsys) -> None:
    good = scenario_from()
    assert check_main(str(good.path), ["eager"], quiet=True) == 0
    assert "no rung failed" in capsys.readouterr().out

    bad = scenario_from(forward="out = out * 100", name="bad.py")
    assert check_main(str(bad.path), ["eager"], quiet=False) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "rung(s) 2 failed" in out

    raising = scenario_from(
        extra="\ndef build_model():\n    raise RuntimeError('no model')\n", name="raising.py"
    )
    assert check_main(str(raising.path), ["eager"], quiet=True) == 2
    err = capsys.readouterr().err
    assert "raising.py:" in err and "build_model() raised RuntimeError: no model" in err

    broken = tmp_path / "broken.py"
    broken.write_text("import torch\ndef make_batch(n):\n    return torch.zeros(n)\n")
    assert check_main(str(broken), ["eager"], quiet=False) == 2
    assert "missing required function(s): build_model" in capsys.readouterr().err
