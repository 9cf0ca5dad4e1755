"""Authorisation modes, consulted in order: the first Allow or Deny decides; NoOpinion passes
to the next; nobody allowing means Forbidden (Kubernetes' union authoriser)."""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from services.apiserver.auth.attributes import RequestAttributes


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


class Authorizer(Protocol):
    name: str

    def authorize(self, attrs: RequestAttributes) -> Decision: ...


class AlwaysAllow:
    name = "AlwaysAllow"

    def authorize(self, attrs: RequestAttributes) -> Decision:
        return Decision.ALLOW


class AlwaysDeny:
    name = "AlwaysDeny"

    def authorize(self, attrs: RequestAttributes) -> Decision:
        return Decision.DENY


class UnionAuthorizer:
    def __init__(self, modes: list[Authorizer]) -> None:
        self.modes = modes

    def authorize(self, attrs: RequestAttributes) -> Decision:
        for mode in self.modes:
            decision = mode.authorize(attrs)
            if decision is not Decision.NO_OPINION:
                return decision
        return Decision.DENY
