"""Why a pod's volumes could not be set up (reported as a FailedMount event; the pod waits in
ContainerCreating and the next sync retries)."""


class VolumeError(Exception):
    pass
