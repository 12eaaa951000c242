from pathlib import Path

import pytest
from pydantic import ValidationError

from autoloop.config import AutoloopConfig, ConfigError, dump_config, load_config


def test_defaults_and_profiles() -> None:
    default = load_config()
    quick = load_config(profile="quick")
    assert default == AutoloopConfig()
    assert quick.profile == "quick"
    assert quick.collect.episodes < default.collect.episodes
    assert quick.sim == default.sim


def test_file_overrides_its_profile(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("profile: quick\ntrain:\n  epochs: 2\n")
    config = load_config(path)
    assert config.profile == "quick"
    assert config.train.epochs == 2
    assert config.collect.episodes == load_config(profile="quick").collect.episodes


def test_unknown_key_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("train:\n  epocs: 3\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert "unknown key 'train.epocs'" in str(error.value)


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("collect:\n  episodes: many\n")
    with pytest.raises(ConfigError, match=r"collect\.episodes: .*valid integer.*'many'"):
        load_config(path)


def test_unknown_profile_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        load_config(profile="huge")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_config(listing)
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "missing.yaml")


def _alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" document in a typed field: 9 nested levels of 9 aliases each (9**9 leaves)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "train:\n  epochs: {" + ", ".join(f"{line.split(':')[0]}: {line.split(': ', 1)[1]}" for line in lines) \
        + "}\n"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb())
    assert len(path.read_bytes()) < 1000
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"config {path}: the YAML's aliases expand to more than 100000 nodes")
    assert len(message) < 300


def test_a_huge_config_file_is_not_read_and_a_bad_value_is_shown_short(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("train:\n  epochs: 1\n" + "# padding\n" * 120_000)
    with pytest.raises(ConfigError, match=r"more than 1048576 bytes of YAML; a larger file is not read"):
        load_config(path)
    path.write_text("train:\n  epochs: [" + ", ".join(["12345678"] * 5000) + "]\n")  # 50 KB, no aliases
    with pytest.raises(ConfigError, match=r"train\.epochs: ") as error:
        load_config(path)
    assert len(str(error.value)) < 400


def test_unknown_scorer_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"evaluate\.scorer: .*unknown scorer 'lb3'"):
        load_config(overrides={"evaluate": {"scorer": "lb3"}})
    assert load_config(overrides={"evaluate": {"scorer": "lb21"}}).evaluate.scorer == "lb21"


def test_evaluation_must_be_held_out() -> None:
    with pytest.raises(ConfigError, match="overlap collection seeds"):
        load_config(profile="quick", overrides={"evaluate": {"seed": 10}})
    # collecting on training towns, evaluating on the held-out ones: nothing to overlap
    assert load_config(overrides={"evaluate": {"seed": 10}}).evaluate.seed == 10


def test_a_slice_is_of_the_eval_suite_only() -> None:
    assert load_config().evaluate.routes == 40
    with pytest.raises(ConfigError, match="routes: a slice is taken of the suite 'eval' only"):
        load_config(overrides={"evaluate": {"suite": "smoke"}})
    assert load_config(overrides={"evaluate": {"suite": "smoke", "routes": None}}).evaluate.suite == "smoke"


def test_configs_are_frozen_and_round_trip(tmp_path: Path) -> None:
    config = load_config(profile="quick")
    with pytest.raises(ValidationError):
        config.train.epochs = 5  # type: ignore[misc]
    path = tmp_path / "dumped.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_sac_entropy_coefficient_is_a_number_or_sb3s_auto() -> None:
    for ent_coef in ("auto", "auto_0.01", "auto_1e-3", 0.05):
        assert load_config(overrides={"train": {"sac": {"ent_coef": ent_coef}}}).train.sac.ent_coef == ent_coef
    with pytest.raises(ConfigError, match=r"train\.sac\.ent_coef: .*'automatic'"):
        load_config(overrides={"train": {"sac": {"ent_coef": "automatic"}}})
    with pytest.raises(ConfigError, match=r"train\.sac\.ent_coef: .*positive"):
        load_config(overrides={"train": {"sac": {"ent_coef": -0.1}}})


def test_the_carla_backend_is_chosen_and_its_section_checked(tmp_path: Path) -> None:
    assert load_config().evaluate.backend == "embedded"
    path = tmp_path / "carla.yaml"
    path.write_text("evaluate:\n  backend: carla\n  carla:\n    routes: routes.xml\n    gpus: [0, 1]\n"
                    "    hosts: ['carla-0:2000']\n    scorer: bench2drive\n")
    carla = load_config(path).evaluate
    assert (carla.backend, carla.carla.routes, carla.carla.gpus, carla.carla.hosts, carla.carla.scorer) == (
        "carla", Path("routes.xml"), (0, 1), ("carla-0:2000",), "bench2drive")
    assert load_config(path) == load_config(_written(tmp_path, dump_config(load_config(path))))
    for key, value, message in [("hots", ["a:1"], "unknown key 'evaluate.carla.hots'"),
                                ("hosts", ["carla-0"], "expected HOST:PORT"),
                                ("scorer", "lb3", "unknown scorer 'lb3'"),
                                ("port_spacing", 2, "evaluate.carla.port_spacing")]:
        with pytest.raises(ConfigError, match=message):
            load_config(overrides={"evaluate": {"carla": {key: value}}})
    with pytest.raises(ConfigError, match=r"evaluate\.backend"):
        load_config(overrides={"evaluate": {"backend": "carl"}})


def _written(folder: Path, text: str) -> Path:
    path = folder / "dumped.yaml"
    path.write_text(text)
    return path
