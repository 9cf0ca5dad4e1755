from pathlib import Path

import yaml

from pinnace_cmd import main as cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_version(capsys) -> None:
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith("pinnace ")


def test_validate_folder(capsys) -> None:
    assert cli.main(["validate", "-f", str(EXAMPLES / "guestbook")]) == 0
    assert "6 object(s) in 6 file(s) are valid" in capsys.readouterr().out


def test_validate_prints_defaulted_objects(capsys) -> None:
    assert (
        cli.main(["validate", "-f", str(EXAMPLES / "guestbook" / "frontend-service.yaml"), "-o", "yaml"]) == 0
    )
    (doc,) = list(yaml.safe_load_all(capsys.readouterr().out))
    assert doc["spec"]["ports"][0]["targetPort"] == 80
    assert doc["metadata"]["namespace"] == "default"


def test_validate_reports_errors_and_fails(capsys) -> None:
    assert cli.main(["validate", "-f", str(EXAMPLES / "invalid" / "unknown-field.yaml")]) == 1
    assert "imagePullPolicyy: unknown field" in capsys.readouterr().err


def test_missing_path(capsys) -> None:
    assert cli.main(["validate", "-f", "/nonexistent.yaml"]) == 1
    assert 'the path "/nonexistent.yaml" does not exist' in capsys.readouterr().err
