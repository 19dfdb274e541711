"""The gRPC service around the augsvc library."""
