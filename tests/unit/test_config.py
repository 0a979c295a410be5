"""Configuration validation: clear errors, YAML round trips, registry."""

from __future__ import annotations

import pytest

from microsight.api import build_config, config_template
from microsight.config import available_methods, config_to_yaml, load_config, validate_config
from microsight.errors import MicrosightError


def test_defaults_validate_and_round_trip(tmp_path):
    cfg = build_config("care")
    path = tmp_path / "cfg.yaml"
    path.write_text(config_to_yaml(cfg))
    again = load_config(path)
    assert again == cfg
    assert again.method.method == "care"
    assert again.training.epochs == cfg.training.epochs


def test_template_is_loadable(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(config_template("care"))
    assert load_config(path).method.method == "care"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"data": {"patch_size": [62, 62]}}, "multiples of 4"),
        ({"data": {"patch_size": [64, 32]}}, "square YX patch"),
        ({"data": {"patch_size": [4, 4]}}, "at least 8 pixels"),
        ({"data": {"batch_size": 0}}, "data.batch_size"),
        ({"training": {"learning_rate": -1}}, "training.learning_rate"),
        ({"training": {"epochs": "many"}}, "training.epochs"),
        ({"data": {"normalization": {"p_low": 99, "p_high": 50}}}, "p_low"),
        ({"data": {"patchsize": [64, 64]}}, "data.patchsize"),
        ({"method": {"method": "care", "kernel_size": 4}}, "odd"),
        ({"method": {"method": "care", "ndim": 3}}, "3D"),
    ],
)
def test_invalid_values_give_one_clear_line(overrides, fragment):
    with pytest.raises(MicrosightError) as err:
        build_config("care", **overrides) if "method" not in overrides else validate_config(
            {**overrides})
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_method_lists_known_ones():
    with pytest.raises(MicrosightError, match=r"available methods: .*care"):
        validate_config({"method": "nope"})


def test_newer_config_version_is_refused():
    with pytest.raises(MicrosightError, match="upgrade microsight"):
        validate_config({"version": 99, "method": "care"})


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("method: [unclosed\n")
    with pytest.raises(MicrosightError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(MicrosightError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_config_for_other_method_is_refused(tmp_path):
    with pytest.raises(MicrosightError, match="config is for method 'other'"):
        build_config("care", {"method": {"method": "other"}})


def test_registry_knows_care():
    methods = available_methods()
    assert "care" in methods
    info = methods["care"]
    assert info.family == "restoration"
    assert "psnr" in info.metrics


def test_broken_method_package_is_skipped_with_a_clear_error(tmp_path, monkeypatch):
    import microsight.methods
    from microsight.config import registry

    (tmp_path / "half_done").mkdir()
    (tmp_path / "half_done" / "__init__.py").write_text("import not_a_real_dependency\n")
    monkeypatch.setattr(microsight.methods, "__path__",
                        [*microsight.methods.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    monkeypatch.setattr(registry, "_BROKEN", {})
    with pytest.warns(RuntimeWarning, match="'half_done' failed to load"):
        methods = available_methods()
    assert "care" in methods
    with pytest.raises(MicrosightError, match=r"installed but failed to load.*not_a_real"):
        registry.get_method("half-done")


def test_overrides_without_base_section_skip_none_values():
    cfg = build_config("care", None, training={"epochs": None, "max_steps": 7},
                       data={"patch_size": None})
    assert cfg.training.max_steps == 7
    assert cfg.training.epochs == 20
    assert cfg.data.patch_size == [64, 64]
