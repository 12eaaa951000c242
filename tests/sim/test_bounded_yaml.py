"""YAML within bounds: aliases that expand beyond reason and oversized texts are refused, naming the source."""

import pytest
import yaml

from sim.bounded_yaml import load_yaml
from sim.scenarios import Scenario


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]" for k in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_aliases_within_bounds_load_as_plain_yaml() -> None:
    assert load_yaml(_bomb(3), source="small") == yaml.safe_load(_bomb(3))
    assert len(load_yaml(_bomb(3), source="small")["a2"]) == 9
    assert load_yaml("", source="empty") is None


@pytest.mark.parametrize("text", [_bomb(9), "a: &a [" + ", ".join(["'" + "x" * 900 + "'"] * 9) + "]\n"
                                  + "b: &b [" + ", ".join(["*a"] * 9) + "]\nc: [" + ", ".join(["*b"] * 99) + "]\n"])
def test_aliases_that_expand_beyond_the_bound_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^bomb\.yaml: the YAML's aliases expand to more than 100000 nodes"):
        load_yaml(text, source="bomb.yaml")


def test_oversized_and_invalid_texts_name_the_source() -> None:
    with pytest.raises(ValueError, match=r"^big: more than 1048576 bytes of YAML"):
        load_yaml("a: 1\n" + "#" * (1 << 20), source="big")
    with pytest.raises(ValueError, match=r"^bad: not valid YAML"):
        load_yaml("a: [1, 2\n", source="bad")


def test_a_scenario_file_with_an_alias_bomb_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^route\.yaml: the YAML's aliases expand"):
        Scenario.from_yaml(_bomb(9), source="route.yaml")
