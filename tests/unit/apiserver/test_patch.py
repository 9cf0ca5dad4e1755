import pytest

from services.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch


def test_merge_patch_rfc7386() -> None:
    assert merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == {
        "a": "z",
        "c": {"d": "e"},
    }
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}


def test_strategic_merge_by_key_and_directives() -> None:
    target = {
        "spec": {
            "containers": [
                {"name": "a", "image": "1", "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "1"},
            ],
            "tolerations": [{"key": "x"}],
        },
        "metadata": {"finalizers": ["one"]},
    }
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "ports": [{"containerPort": 81}]},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "2"},
            ],
            "tolerations": [{"key": "y"}],
        },
        "metadata": {"finalizers": ["two"]},
    }
    result = strategic_merge_patch(target, patch)
    containers = result["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "c"]
    assert [p["containerPort"] for p in containers[0]["ports"]] == [80, 81]
    assert result["spec"]["tolerations"] == [{"key": "y"}]
    assert result["metadata"]["finalizers"] == ["one", "two"]


def test_strategic_merge_missing_key() -> None:
    with pytest.raises(PatchError, match="merge key"):
        strategic_merge_patch({"spec": {"containers": []}}, {"spec": {"containers": [{"image": "x"}]}})


def test_json_patch_rfc6902() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    ops = [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "remove", "path": "/c"},
        {"op": "move", "from": "/a/b", "path": "/d"},
        {"op": "copy", "from": "/d", "path": "/e"},
        {"op": "test", "path": "/e/2", "value": 3},
        {"op": "replace", "path": "/e/0", "value": 9},
    ]
    assert json_patch(doc, ops) == {"a": {}, "d": [1, 2, 3], "e": [9, 2, 3]}
    with pytest.raises(PatchError, match="test operation"):
        json_patch(doc, [{"op": "test", "path": "/c", "value": 2}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "bogus", "path": "/c"}])
