"""saets.tasks: the nine paper tasks, task files (round trip, errors), chosen features."""
import json

import pytest

from saets.core import ConfigError, MismatchError
from saets.tasks import (PAPER_TASKS, TASKS, Task, TaskError, get_task, load_chosen_features, load_task_file,
                         register_task, save_task_file, tasks_table)

PAPER_IDS = {  # gemma-2-2b, gemma-2-9b (original-repo-facts.md)
    "anger": ({4111: 1.0}, {441: 1.0}),
    "christian": ({5483: 1.0}, {6387: 1.0}),
    "conspiracy": ({8710: 1.0}, {3358: 1.0}),
    "french": ({8392: 0.5, 15769: 0.5}, {11691: 1.0}),
    "london": ({14455: 1.0}, {6915: 0.3, 9983: 0.4, 11748: 0.3}),
    "love": ({16036: 0.5, 7863: 0.5}, {12983: 1.0}),
    "praise": ({2054: 1.0}, {9946: 1.0}),
    "want_to_die": ({16226: 0.5, 9679: 0.5}, {11670: 1.0}),
    "wedding": ({4230: 1.0}, {2822: 1.0}),
}

MINIMAL = {"name": "cats", "description": "Cats and kittens.", "criterion": "The text is about cats",
           "positive": ["My cat purrs."], "negative": ["My dog barks."]}


@pytest.fixture
def clean_registry():
    before = dict(TASKS)
    yield
    TASKS.clear()
    TASKS.update(before)


def test_nine_tasks_present_with_prompts():
    assert tuple(sorted(PAPER_TASKS)) == tuple(sorted(PAPER_IDS))
    for name in PAPER_TASKS:
        t = get_task(name)
        assert t.name == name
        assert len(t.positive) >= 10 and len(t.negative) >= 10
        assert all(p.strip() for p in t.positive + t.negative)
        assert not set(t.positive) & set(t.negative)
        assert t.description and t.criterion.startswith("The text")


@pytest.mark.parametrize("name", sorted(PAPER_IDS))
def test_paper_feature_ids(name):
    t = get_task(name)
    f2, f9 = PAPER_IDS[name]
    assert t.features_for("gemma-2-2b", "sae_ts") == f2
    assert t.features_for("gemma-2-9b", "sae_ts") == f9
    assert t.features_for("gemma-2-9b", "sae") == f9


def test_praise_quirk():
    t = get_task("praise")
    assert t.features_for("gemma-2-2b", "sae") == {11919: 1.0}
    for m in ("sae_ts", "pinv", "rotation", "caa", None):
        assert t.features_for("gemma-2-2b", m) == {2054: 1.0}


def test_features_for_accepts_config_object():
    from saets.core import get_config
    assert get_task("anger").features_for(get_config("gemma-2-2b")) == {4111: 1.0}


def test_name_normalisation_and_unknown():
    assert get_task("Want to die") is get_task("want-to-die") is get_task("want_to_die")
    with pytest.raises(TaskError) as e:
        get_task("weddings")
    assert "'weddings'" in str(e.value) and "wedding" in str(e.value) and "anger" in str(e.value)
    assert isinstance(e.value, ConfigError)


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_round_trip(tmp_path, suffix):
    for name in PAPER_TASKS:
        p = save_task_file(get_task(name), tmp_path / f"{name}{suffix}")
        back = load_task_file(p)
        assert back == get_task(name)
        assert back.source == str(p)


def test_minimal_file_and_register(tmp_path, clean_registry):
    p = tmp_path / "cats.json"
    p.write_text(json.dumps(MINIMAL))
    t = register_task(p)
    assert get_task("cats") is t and t.title == "Cats" and t.features == {}
    register_task(p)  # the same definition again is fine
    with pytest.raises(TaskError, match="already registered"):
        register_task(Task("cats", "x", "y", ["a"], ["b"]))
    register_task(Task("cats", "x", "y", ["a"], ["b"]), overwrite=True)
    assert get_task("cats").description == "x"
    with pytest.raises(TaskError, match="feature-selection stage"):
        t.features_for("gemma-2-2b")


@pytest.mark.parametrize("field", ["name", "description", "criterion", "positive", "negative"])
def test_missing_field_names_field_and_file(tmp_path, field):
    d = {k: v for k, v in MINIMAL.items() if k != field}
    p = tmp_path / "broken.yaml"
    save = __import__("yaml").safe_dump(d)
    p.write_text(save)
    with pytest.raises(TaskError) as e:
        load_task_file(p)
    assert repr(field) in str(e.value) and "broken.yaml" in str(e.value)


@pytest.mark.parametrize("change, needle", [
    ({"positive": []}, "'positive'"),
    ({"negative": ["ok", ""]}, "'negative'"),
    ({"criterion": "  "}, "'criterion'"),
    ({"name": "9 lives!"}, "'name'"),
    ({"features": {"gemma-2-2b": {"abc": 1.0}}}, "'abc'"),
    ({"features": {"gemma-2-2b": {5: float("nan")}}}, "features.gemma-2-2b"),
    ({"features": {"gemma-2-2b": {-3: 1.0}}}, "negative"),
    ({"features": {"gemma-2-2b": {5: 0.0}}}, "zero"),
    ({"features": [1, 2]}, "'features'"),
    ({"sae_feature": {"gemma-2-2b": 5}}, "unknown field"),
])
def test_bad_values(tmp_path, change, needle):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({**MINIMAL, **change}))
    with pytest.raises(TaskError) as e:
        load_task_file(p)
    assert needle in str(e.value) and "bad.json" in str(e.value)


def test_file_errors(tmp_path):
    with pytest.raises(TaskError, match="does not exist"):
        load_task_file(tmp_path / "nope.yaml")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(TaskError, match="unsupported task file type"):
        load_task_file(tmp_path / "t.txt")
    (tmp_path / "t.yaml").write_text("name: [unclosed")
    with pytest.raises(TaskError, match="cannot parse"):
        load_task_file(tmp_path / "t.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(TaskError, match="must be a mapping"):
        load_task_file(tmp_path / "list.yaml")


def test_chosen_features_shapes(tmp_path):
    doc = {"config": "gemma-3-270m", "tasks": {
        "wedding": {"features": {"812": 1.0}, "label": "weddings", "score": 0.9},
        "London": {"3041": 0.5, "77": 0.5},
        "anger": 1520,
        "praise": {"features": [5, 6], "sae_features": 7}}}
    p = tmp_path / "chosen.json"
    p.write_text(json.dumps(doc))
    for chosen in (doc, p, str(p)):
        assert get_task("wedding").features_for("gemma-3-270m", chosen=chosen) == {812: 1.0}
        assert get_task("london").features_for("gemma-3-270m", chosen=chosen) == {3041: 0.5, 77: 0.5}
        assert get_task("anger").features_for("gemma-3-270m", "sae", chosen=chosen) == {1520: 1.0}
        assert get_task("praise").features_for("gemma-3-270m", "sae", chosen=chosen) == {7: 1.0}
        assert get_task("praise").features_for("gemma-3-270m", "sae_ts", chosen=chosen) == {5: 1.0, 6: 1.0}
    flat = load_chosen_features({"wedding": [1, 2]})
    assert flat == {"wedding": {"features": {1: 1.0, 2: 1.0}, "sae_features": {}}}
    with pytest.raises(MismatchError, match="'gemma-3-270m', not 'gemma-3-270m-scope2'"):
        get_task("wedding").features_for("gemma-3-270m-scope2", chosen=p)
    with pytest.raises(TaskError, match="no entry for this task.*feature-selection"):
        get_task("love").features_for("gemma-3-270m", chosen=p)
    with pytest.raises(TaskError, match="does not exist.*feature-selection"):
        get_task("love").features_for("gemma-3-270m", chosen=tmp_path / "missing.json")
    with pytest.raises(TaskError, match="'x'"):
        load_chosen_features({"wedding": {"features": {"x": 1}}})


def test_table():
    df = tasks_table()
    assert list(df.index[:9]) == list(PAPER_TASKS) or set(PAPER_TASKS) <= set(df.index)
    assert df.loc["praise", "gemma-2-2b"] == "2054; SAE steering: 11919"
    assert df.loc["london", "gemma-2-9b"] == "6915 (0.3) + 9983 (0.4) + 11748 (0.3)"
    assert (df["#pos"] >= 10).all()
