"""Generate the gRPC stubs in ``fitness/v1`` from ``protos/`` (``python -m fitness.protogen``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def proto_files() -> list[Path]:
    """Return every contract under ``protos/``."""
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path = ROOT) -> None:
    """Run protoc for every contract, writing the Python package tree under ``out_dir``."""
    from grpc_tools import protoc  # dev dependency: only needed when regenerating

    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
