"""What the client and the server share: the generated stubs (``augsvc.wire.v1``), arrays and
images as messages (``tensors``, ``images``), the Pipeline message (``pipeline``) and the
metadata both ends read (``metadata``). It imports the library, never the service or the client.
"""
