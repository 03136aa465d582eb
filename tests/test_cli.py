import re

import pytest

from edgeplan.cli import main


def test_methods_lists_every_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("highs", "cp-sat", "scipy", "pyomo"):
        assert f"\n{name} " in "\n" + out


def test_demo_prints_the_catalog_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--time-limit", "0.3"]) == 0
    out = capsys.readouterr().out
    agree = re.search(r"(\d+)/(\d+) runs agree with the hand-derived answers", out)
    assert agree and agree.group(1) == agree.group(2) and int(agree.group(2)) >= 48
    assert "mdknap-60x10" in out and "feasible  time" in out


def test_unknown_command_exits_nonzero() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
