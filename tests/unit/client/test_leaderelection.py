import asyncio

from pinnace.api.coordination.v1 import coordination_pb2
from services.client.client import Client
from services.client.leaderelection import LeaderElector


async def test_only_one_leader_and_takeover(client: Client) -> None:
    a = LeaderElector(
        client, "scheduler", "kube-system", "a", lease_duration=1, renew_deadline=0.8, retry_period=0.1
    )
    b = LeaderElector(
        client, "scheduler", "kube-system", "b", lease_duration=1, renew_deadline=0.8, retry_period=0.1
    )
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.try_acquire_or_renew()
    leading = asyncio.Event()

    async def lead() -> None:
        leading.set()
        await asyncio.sleep(3600)

    contender = asyncio.create_task(b.run(lead))
    await asyncio.sleep(0.3)
    assert not leading.is_set()  # a's lease is fresh
    await asyncio.wait_for(leading.wait(), 5)  # a stopped renewing; b takes over after the lease expires
    lease = await client.get(coordination_pb2.Lease, "scheduler", "kube-system")
    assert lease.spec.holder_identity == "b" and lease.spec.lease_transitions == 1
    contender.cancel()


async def test_release_hands_over_at_once(client: Client) -> None:
    a = LeaderElector(client, "cm", "kube-system", "a", lease_duration=60)
    b = LeaderElector(client, "cm", "kube-system", "b", lease_duration=60)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    await asyncio.sleep(1.1)
    assert await b.try_acquire_or_renew()
