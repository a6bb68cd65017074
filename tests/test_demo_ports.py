"""make demo reads its ports as the service reads PORT: a bad one is one line, not a traceback."""

import pytest

from tools import demo


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"PORT": "abc"}, "PORT must be a whole number from 1 to 65535"),
        ({"PORT": "0"}, "PORT must be a whole number from 1 to 65535"),
        ({"EMULATOR_PORT": "x"}, "EMULATOR_PORT must be a whole number from 0 to 65535"),
    ],
)
def test_a_bad_port_stops_the_demo_with_one_line(monkeypatch, capsys, environ, named):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert demo.main() == 1
    assert capsys.readouterr().err == f"cannot start: invalid configuration: {named}\n"
