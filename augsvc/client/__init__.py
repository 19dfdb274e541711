"""The augsvc client: ``AugmentClient`` (one address or several replicas) and ``stream_epoch``.

It imports the wire package and the library's light modules, never the service, so a training
process that only streams loads neither the server nor albumentations. The torch datasets over
it are in ``augsvc.client.datasets``.
"""

from augsvc.client.augmenter import AugmentClient, Pending, RemoteImage, RemoteText
from augsvc.client.epochs import EpochBatch, stream_epoch

__all__ = ["AugmentClient", "EpochBatch", "Pending", "RemoteImage", "RemoteText", "stream_epoch"]
