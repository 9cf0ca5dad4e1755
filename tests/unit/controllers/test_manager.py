from __future__ import annotations

import asyncio
import contextlib

import pytest

from pinnace_cmd import controller_manager as cmd
from services.client.client import Client
from services.controllers.manager import ControllerManager, UnknownControllerError, enabled_controllers
from tests.unit.apiserver.helpers import manifest
from tests.unit.controllers.fakes import fast_settings, until
from tests.unit.controllers.test_replicaset import RS, count_is


def test_controller_selection_like_kube_controller_manager() -> None:
    everything = enabled_controllers("*")
    assert "deployment" in everything and "garbagecollector" in everything
    assert "nodeipam" not in enabled_controllers("*,-nodeipam")
    assert enabled_controllers("endpoint,replicaset") == ["endpoint", "replicaset"]
    with pytest.raises(UnknownControllerError):
        enabled_controllers("nope")


def test_flags() -> None:
    assert cmd.duration("40s") == 40
    assert cmd.duration("1m30s") == 90
    assert cmd.duration("500ms") == 0.5
    assert cmd.duration("2") == 2
    parser = cmd.argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(
        ["--node-monitor-grace-period", "2s", "--concurrent-deployment-syncs", "9", "--leader-elect=false"]
    )
    settings = cmd.settings_from(args)
    assert settings.node_monitor_grace_period == 2
    assert settings.workers_for("deployment") == 9
    assert args.leader_elect is False
    assert cmd.main(["--controllers", "bogus"]) == 2


async def test_only_the_leader_acts_and_a_successor_takes_over(client: Client) -> None:
    def make() -> ControllerManager:
        return ControllerManager(
            client,
            fast_settings(),
            ["replicaset"],
            lease_duration=1.0,
            renew_deadline=0.8,
            retry_period=0.1,
        )

    first, second = make(), make()
    run_first = asyncio.create_task(first.run())
    await until(lambda: first.elector.is_leader)
    run_second = asyncio.create_task(second.run())
    await client.create(manifest(RS))
    await until(lambda: count_is(client, "app=web", 3))
    assert not second.elector.is_leader
    run_first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run_first
    await until(lambda: second.elector.is_leader, timeout=10)
    await client.scale("replicasets", "web", 4, "default")
    await until(lambda: count_is(client, "app=web", 4))
    run_second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run_second
