import pytest

from bench.errors import UnknownNameError
from bench.registry import METHODS, PROTOCOLS, TASKS, Registry


def test_duplicate_registration_is_an_error():
    registry = Registry("thing")

    @registry.register("a")
    def first():
        return 1

    with pytest.raises(KeyError, match="already registered"):
        registry.register("a")(lambda: 2)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        METHODS.get("no-such-method")
    message = str(info.value)
    assert "no-such-method" in message
    for name in ("baseline", "kd"):
        assert name in message
    assert info.value.exit_code == 2


def test_plugins_register_themselves():
    assert "classification" in TASKS.names()
    assert {"classification-smoke", "classification-mini"} <= set(PROTOCOLS.names())
    assert {"baseline", "kd"} <= set(METHODS.names())
