from __future__ import annotations

import pytest

from cinescene.environment import env_flag
from cinescene.errors import InputError


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("Yes", True), ("on", True), ("0", False),
                                             ("false", False), ("no", False), ("OFF", False), ("", False)])
def test_yes_no_values(monkeypatch, value, expected):
    monkeypatch.setenv("CINESCENE_TEST_FLAG", value)
    assert env_flag("CINESCENE_TEST_FLAG") is expected


def test_unset_gives_the_default(monkeypatch):
    monkeypatch.delenv("CINESCENE_TEST_FLAG", raising=False)
    assert env_flag("CINESCENE_TEST_FLAG") is False
    assert env_flag("CINESCENE_TEST_FLAG", default=True) is True


def test_anything_else_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("CINESCENE_TEST_FLAG", "maybe")
    with pytest.raises(InputError, match="CINESCENE_TEST_FLAG='maybe'"):
        env_flag("CINESCENE_TEST_FLAG")
