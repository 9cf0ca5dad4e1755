"""SubjectAccessReview: the authorisers' answer to "may this user do that?", for components that
decide on behalf of others (the CSR approver asks whether a CSR's requester may create
`certificatesigningrequests/nodeclient`). Answered from the same authorisers as requests; never
stored."""

from __future__ import annotations

from pinnace.api.authorization.v1 import authorization_pb2
from services.apiserver.auth.attributes import RequestAttributes
from services.apiserver.auth.authz import Decision, UnionAuthorizer
from services.apiserver.auth.user import UserInfo


def review(
    authorizer: UnionAuthorizer, request: authorization_pb2.SubjectAccessReview
) -> authorization_pb2.SubjectAccessReview:
    answer = authorization_pb2.SubjectAccessReview()
    answer.CopyFrom(request)
    answer.ClearField("status")
    spec = request.spec
    if not spec.user and not spec.groups:
        answer.status.evaluation_error = "at least one of user or group must be specified"
        answer.status.reason = answer.status.evaluation_error
        return answer
    wanted = spec.resource_attributes
    attrs = RequestAttributes(
        UserInfo(spec.user, tuple(spec.groups), spec.uid),
        wanted.verb,
        wanted.group,
        wanted.resource,
        wanted.subresource,
        wanted.namespace,
        wanted.name,
    )
    decision = authorizer.authorize(attrs)
    answer.status.allowed = decision is Decision.ALLOW
    if not answer.status.allowed:
        answer.status.reason = attrs.describe()
    return answer
