"""Cross-cutting code shared by every process: config, logging, gRPC helpers and generated stubs."""
