"""The typed settings grammar (``blackprop.settings``) and how estimators take their settings."""

from __future__ import annotations

from typing import Literal

import pytest

import blackprop as bp
from blackprop.settings import SettingError, coerce, split_assignments


@pytest.mark.parametrize("text", ["true", "True", "YES", "on", "1", " yes "])
def test_bool_true_words(text):
    assert coerce(text, bool, field="f") is True


@pytest.mark.parametrize("text", ["false", "False", "NO", "off", "0"])
def test_bool_false_words(text):
    assert coerce(text, bool, field="f") is False


def test_numbers_strings_optionals_and_choices():
    assert coerce("12", int, field="f") == 12 and coerce(12, int, field="f") == 12
    assert coerce("1e-3", float, field="f") == 0.001 and coerce(2, float, field="f") == 2.0
    assert coerce("l2", str, field="f") == "l2"
    assert coerce("None", int | None, field="f") is None and coerce("3", int | None, field="f") == 3
    assert coerce(None, int | None, field="f") is None
    assert coerce("b", Literal["a", "b"], field="f") == "b"


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("maybe", bool, r"ISED\(dedup=...\): must be a bool \(true/false, yes/no, on/off, 1/0\), got 'maybe'"),
        ("ten", int, r"ISED\(dedup=...\): must be an int, got 'ten'"),
        ("1.5", int, r"must be an int, got '1.5'"),
        (True, int, r"must be an int, got True"),
        (2.5, int, r"must be an int, got 2.5"),
        ("x", float, r"must be a number, got 'x'"),
        (3, str, r"must be a string, got 3"),
        ("c", Literal["a", "b"], r"must be one of a, b, got 'c'"),
        ("x", int | None, r"must be an int or none, got 'x'"),
    ],
)
def test_wrong_values_name_the_field_the_type_and_the_value(value, kind, message):
    with pytest.raises(SettingError, match=message):
        coerce(value, kind, field="ISED(dedup=...)")


def test_split_assignments_refuses_malformed_and_repeated_items():
    assert split_assignments(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(SettingError, match=r"setting 'dedup': expected key=value"):
        split_assignments(["dedup"])
    with pytest.raises(SettingError, match=r"setting 'a' given twice \('1' and '2'\)"):
        split_assignments(["a=1", "a=2"])


def test_estimator_parses_text_values_to_the_declared_types():
    ised = bp.estimator("ised", dedup="False", num_samples="10", exploration="0.1")
    assert ised.dedup is False and ised.num_samples == 10 and ised.exploration == 0.1
    assert bp.estimator("ised", dedup="no").dedup is False and bp.estimator("ised-paper", dedup="1").dedup is True
    assert bp.estimator("ised-paper", dedup=True).dedup is True
    assert bp.ISED(exploration=0).exploration == 0.0 and isinstance(bp.ISED(exploration=0).exploration, float)


def test_estimator_refuses_a_wrong_type_naming_the_field():
    with pytest.raises(ValueError, match=r"ISED\(dedup=...\): must be a bool .*, got 'maybe'"):
        bp.estimator("ised", dedup="maybe")
    with pytest.raises(ValueError, match=r"ISED\(num_samples=...\): must be an int, got 'ten'"):
        bp.estimator("ised", num_samples="ten")
    with pytest.raises(ValueError, match=r"REINFORCE\(num_samples=...\): must be an int, got 2.5"):
        bp.REINFORCE(num_samples=2.5)
    with pytest.raises(ValueError, match=r"ANeSI\(broad_std=...\): must be a number, got 'wide'"):
        bp.estimator("anesi", broad_std="wide")


def test_every_constraint_speaks_one_format():
    cases = [
        (lambda: bp.ISED(num_samples=0), r"ISED\(num_samples=...\): must be an int >= 1, got 0"),
        (lambda: bp.ISED(normalize="l3"), r"ISED\(normalize=...\): must be one of l1, l2, none, got 'l3'"),
        (lambda: bp.ISED(exploration=1.5), r"ISED\(exploration=...\): must be a number in \[0, 1\), got 1.5"),
        (lambda: bp.NASR(eps=-1), r"NASR\(eps=...\): must be a number > 0, got -1.0"),
        (lambda: bp.ANeSI(warmup_steps=-1), r"ANeSI\(warmup_steps=...\): must be an int >= 0, got -1"),
        (lambda: bp.Exact(max_tuples=0), r"Exact\(max_tuples=...\): must be an int >= 1, got 0"),
        (lambda: bp.IndeCateR(variant="both"), r"IndeCateR\(variant=...\): must be one of shared, per-variable"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


def test_parse_estimator_settings_for_the_cli():
    assert bp.parse_estimator_settings("ised", ["dedup=False", "num_samples=10", "weights=importance"]) == {
        "dedup": False, "num_samples": 10, "weights": "importance"}
    with pytest.raises(TypeError, match=r"estimator 'ised': unknown setting\(s\) dedupe; valid settings: num_samples"):
        bp.parse_estimator_settings("ised", ["dedupe=no"])
    with pytest.raises(ValueError, match=r"ISED\(dedup=...\): must be a bool"):
        bp.parse_estimator_settings("ised", ["dedup=nope"])
    with pytest.raises(ValueError, match="unknown estimator 'isd'"):
        bp.parse_estimator_settings("isd", [])


def test_unknown_settings_keep_their_error():
    with pytest.raises(TypeError, match=r"estimator 'reinforce': unknown setting\(s\) samples; valid settings: "
                                        r"num_samples, baseline, objective"):
        bp.estimator("reinforce", samples=3)


def test_indecater_variants_are_one_class():
    plus = bp.estimator("indecater+", num_samples=5)
    assert type(plus) is bp.IndeCateR and plus.variant == "per-variable" and bp.ESTIMATORS["indecater+"] is bp.IndeCateR
    assert bp.IndeCateRPlus(num_samples=5) == plus
    assert bp.estimator("indecater").variant == "shared"
    with pytest.raises(TypeError, match=r"estimator 'indecater\+': unknown setting\(s\) variant"):
        bp.estimator("indecater+", variant="shared")


def test_substitution_ised_is_gone():
    assert "ised-sub" not in bp.ESTIMATORS and not hasattr(bp, "SubstitutionISED")


def test_estimator_base_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        bp.Estimator()  # type: ignore[abstract]
