"""The generated stubs are exactly what protoc makes from protos/."""

from __future__ import annotations

from fitness import protogen


def test_it_regenerates_identical_stubs(tmp_path):
    protogen.generate(tmp_path)
    generated = sorted((tmp_path / "fitness" / "v1").glob("*_pb2*.py*"))
    assert generated, "protoc produced nothing"
    committed_dir = protogen.ROOT / "fitness" / "v1"
    for path in generated:
        committed = committed_dir / path.name
        assert committed.exists(), f"{path.name} is not committed"
        assert committed.read_text() == path.read_text(), f"{path.name} differs from protos/"
    committed_names = {p.name for p in committed_dir.glob("*_pb2*.py*")}
    assert committed_names == {p.name for p in generated}
