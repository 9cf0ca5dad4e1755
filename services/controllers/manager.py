"""The controller-manager: builds the enabled controllers on one shared informer factory and
runs them while this instance holds the leader Lease (kube-system/kube-controller-manager),
so several replicas can run for availability with exactly one acting at a time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable

import structlog

from services.client.client import Client
from services.client.events import EventRecorder
from services.client.leaderelection import LeaderElector
from services.controllers import metrics
from services.controllers.base import Controller, ControllerContext, InformerFactory, Settings
from services.controllers.cronjob import CronJobController
from services.controllers.csrapproving import CSRApprovingController
from services.controllers.csrsigning import CSRSigningController
from services.controllers.daemonset import DaemonSetController
from services.controllers.deployment import DeploymentController
from services.controllers.disruption import DisruptionController
from services.controllers.endpoints import EndpointsController
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.job import JobController
from services.controllers.namespace import NamespaceController
from services.controllers.nodeipam import NodeIpamController
from services.controllers.nodelifecycle import NodeLifecycleController
from services.controllers.persistentvolume import PersistentVolumeController
from services.controllers.podautoscaler import HorizontalPodAutoscalerController
from services.controllers.podgc import PodGarbageCollector
from services.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from services.controllers.resourcequota import ResourceQuotaController
from services.controllers.rootcacertpublisher import RootCACertPublisher
from services.controllers.serviceaccount import ServiceAccountController
from services.controllers.statefulset import StatefulSetController
from services.controllers.tokencleaner import TokenCleaner

log = structlog.get_logger("controller-manager")

ControllerFactory = Callable[[ControllerContext], Controller]

# Names as kube-controller-manager's --controllers flag spells them.
CONTROLLERS: dict[str, ControllerFactory] = {
    "endpoint": EndpointsController,
    "replicationcontroller": ReplicationControllerController,
    "replicaset": ReplicaSetController,
    "garbagecollector": GarbageCollector,
    "namespace": NamespaceController,
    "serviceaccount": ServiceAccountController,
    "root-ca-cert-publisher": RootCACertPublisher,
    "deployment": DeploymentController,
    "nodeipam": NodeIpamController,
    "nodelifecycle": NodeLifecycleController,
    "job": JobController,
    "daemonset": DaemonSetController,
    "statefulset": StatefulSetController,
    "cronjob": CronJobController,
    "resourcequota": ResourceQuotaController,
    "persistentvolume-binder": PersistentVolumeController,
    "horizontalpodautoscaling": HorizontalPodAutoscalerController,
    "disruption": DisruptionController,
    "podgc": PodGarbageCollector,
    "csrapproving": CSRApprovingController,
    "csrsigning": CSRSigningController,
    "tokencleaner": TokenCleaner,
}
LEASE_NAME = "kube-controller-manager"
LEASE_NAMESPACE = "kube-system"


class UnknownControllerError(ValueError):
    pass


def enabled_controllers(spec: str, known: dict[str, ControllerFactory] | None = None) -> list[str]:
    """`*` enables every controller, `name` one, `-name` disables one (kube-controller-manager)."""
    known = known if known is not None else CONTROLLERS
    items = [s.strip() for s in spec.split(",") if s.strip()] or ["*"]
    for item in items:
        name = item.lstrip("-")
        if name != "*" and name not in known:
            raise UnknownControllerError(
                f"{name!r} is not a known controller (known: {', '.join(sorted(known))})"
            )
    everything = "*" in items
    return [n for n in known if (everything or n in items) and f"-{n}" not in items]


class ControllerManager:
    def __init__(
        self,
        client: Client,
        settings: Settings,
        controllers: list[str],
        *,
        leader_elect: bool = True,
        identity: str = "",
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        self.client = client
        self.settings = settings
        self.names = controllers
        self.leader_elect = leader_elect
        self.identity = identity or f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.elector = LeaderElector(
            client,
            LEASE_NAME,
            LEASE_NAMESPACE,
            self.identity,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
        self.controllers: list[Controller] = []

    async def run(self) -> None:
        if not self.leader_elect:
            await self.lead()
            return
        try:
            while True:
                await self.elector.run(self.lead)
                log.warning("leadership lost; campaigning again")
        finally:
            await self.elector.release()

    async def lead(self) -> None:
        """Everything a leader does; cancelled when leadership is lost."""
        metrics.LEADER.set(1)
        informers = InformerFactory(self.client)
        recorder = EventRecorder(self.client, "controller-manager", socket.gethostname())
        ctx = ControllerContext(self.client, informers, recorder, self.settings)
        self.controllers = [CONTROLLERS[name](ctx) for name in self.names]
        informers.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            await informers.wait_synced()
            log.info("caches synced; starting controllers", controllers=self.names)
            tasks = [asyncio.create_task(c.run(), name=f"controller-{c.name}") for c in self.controllers]
            await asyncio.gather(*tasks)
        finally:
            metrics.LEADER.set(0)
            for controller in self.controllers:
                await controller.shutdown()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await informers.stop()
            await recorder.close()
