"""`pinctl label` and `pinctl annotate`: kubectl's overwrite rule and messages, removals,
selectors, --resource-version, and bad input that changes nothing."""

from __future__ import annotations

from services.client.client import Client
from tests.unit.apiserver.helpers import pod
from tests.unit.cli.conftest import Pinctl


async def labels(client: Client, name: str = "web") -> dict[str, str]:
    return dict((await client.get("pods", name, "default")).metadata.labels)


async def test_label_add_overwrite_and_remove(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web", labels={"app": "web"}))
    added = await pinctl("label", "pods", "web", "tier=front", "env=prod")
    assert (added.code, added.out) == (0, "pod/web labeled\n")
    assert await labels(client) == {"app": "web", "tier": "front", "env": "prod"}

    refused = await pinctl("label", "pod/web", "tier=back")
    assert refused.code == 1
    assert refused.err == "error: 'tier' already has a value (front), and --overwrite is false\n"
    assert (await labels(client))["tier"] == "front"

    same = await pinctl("label", "pod/web", "tier=front")
    assert same.out == "pod/web not labeled\n"
    overwritten = await pinctl("label", "pod/web", "tier=back", "--overwrite")
    assert overwritten.out == "pod/web labeled\n"
    assert (await labels(client))["tier"] == "back"

    removed = await pinctl("label", "pod/web", "env-", "ghost-")
    assert removed.out == 'label "ghost" not found.\npod/web unlabeled\n'
    assert await labels(client) == {"app": "web", "tier": "back"}


async def test_label_by_selector_and_all(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("a", labels={"app": "web"}))
    await client.create(pod("b", labels={"app": "web"}))
    await client.create(pod("c", labels={"app": "db"}))
    result = await pinctl("label", "pods", "-l", "app=web", "seen=yes")
    assert sorted(result.out.splitlines()) == ["pod/a labeled", "pod/b labeled"]
    assert "seen" not in await labels(client, "c")
    everything = await pinctl("label", "pods", "--all", "all=yes")
    assert len(everything.out.splitlines()) == 3


async def test_resource_version_precondition(pinctl: Pinctl, client: Client) -> None:
    created = await client.create(pod("web"))
    await client.patch("pods", "web", {"metadata": {"annotations": {"touched": "1"}}}, "default")
    stale = await pinctl("label", "pod/web", "a=b", f"--resource-version={created.metadata.resource_version}")
    assert stale.code == 1
    assert stale.err.startswith('Error from server (Conflict): Operation cannot be fulfilled on pods "web"')
    assert "a" not in await labels(client)
    current = (await client.get("pods", "web", "default")).metadata.resource_version
    fresh = await pinctl("label", "pod/web", "a=b", f"--resource-version={current}")
    assert fresh.out == "pod/web labeled\n"


async def test_annotate(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web"))
    assert (await pinctl("annotate", "pod/web", "note=first")).out == "pod/web annotated\n"
    refused = await pinctl("annotate", "pod/web", "note=second")
    assert refused.err == (
        "error: --overwrite is false but found the following declared annotation(s): "
        "'note' already has a value (first)\n"
    )
    # The change cause is always overwritten, as kubectl allows.
    await pinctl("annotate", "pod/web", "kubernetes.io/change-cause=one")
    assert (await pinctl("annotate", "pod/web", "kubernetes.io/change-cause=two")).code == 0
    assert (await pinctl("annotate", "pod/web", "note-")).code == 0
    annotations = dict((await client.get("pods", "web", "default")).metadata.annotations)
    assert annotations == {"kubernetes.io/change-cause": "two"}


async def test_dry_runs_change_nothing(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web"))
    client_side = await pinctl("label", "pod/web", "a=b", "--dry-run=client", "-o", "yaml")
    assert "a: b" in client_side.out
    server_side = await pinctl("label", "pod/web", "a=b", "--dry-run=server")
    assert server_side.out == "pod/web labeled (server dry run)\n"
    assert await labels(client) == {}


async def test_bad_input_changes_nothing(pinctl: Pinctl, client: Client) -> None:
    await client.create(pod("web", labels={"app": "web"}))
    cases = {
        ("label", "pod/web", "bad key=v"): "error: invalid label spec: bad key",
        ("label", "pod/web", "k=v=w"): "error: invalid label spec: k=v=w",
        ("label", "pod/web", "k=-bad-"): 'error: invalid label value: "k=-bad-"',
        (
            "label",
            "pod/web",
            "k=v",
            "k-",
        ): "error: can not both modify and remove a label in the same command",
        ("label", "pod/web"): "error: at least one label update is required",
        ("label", "gadgets/web", "k=v"): 'error: the server doesn\'t have a resource type "gadgets"',
        (
            "label",
            "pod/web",
            "k=v",
            "pod/other",
        ): "error: all resources must be specified before label changes",
        ("label", "pods", "k=v"): "error: resource(s) were provided, but no name was specified",
        ("label", "pods", "web", "k=v", "-l", "app=web"): "error: name cannot be provided when a selector",
        ("annotate", "pod/web", "bad key=v"): "error: invalid annotation key: bad key",
        ("annotate", "pod/web", "=v"): "error: at least one annotation update is required",
    }
    for argv, message in cases.items():
        result = await pinctl(*argv)
        assert result.code != 0, argv
        assert result.err.startswith(message), (argv, result.err)
    missing = await pinctl("label", "pod/nope", "k=v")
    assert missing.err == 'Error from server (NotFound): pods "nope" not found\n'
    assert await labels(client) == {"app": "web"}
    assert dict((await client.get("pods", "web", "default")).metadata.annotations) == {}
