"""Generate the Python protobuf/gRPC modules from protos/, or check that they are current.

The generated modules are committed next to their .proto sources (protos/ is an import
root, so `pinnace.api.core.v1.core_pb2` is importable). Committing them lets a user install
pinnace without grpcio-tools; `--check` lets CI fail when someone edits a .proto and forgets
to regenerate.

Usage: python hack/genproto.py [--check]
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_sources() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc for every .proto into out_dir, mirroring the protos/ tree."""
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    sources = proto_sources()
    messages_only = [str(p.relative_to(PROTOS)) for p in sources if not _has_service(p)]
    with_services = [str(p.relative_to(PROTOS)) for p in sources if _has_service(p)]
    common = [f"-I{PROTOS}", f"-I{well_known}", f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    batches = [(messages_only, []), (with_services, [f"--grpc_python_out={out_dir}"])]
    for files, extra in batches:
        if not files:
            continue
        code = protoc.main(["grpc_tools.protoc", *common, *extra, *files])
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}")
    for leaf in {p.parent for p in out_dir.rglob("*_pb2.py")}:
        for package_dir in (leaf, *leaf.parents):
            if package_dir == out_dir:
                break
            (package_dir / "__init__.py").touch()


def _has_service(proto: Path) -> bool:
    return any(line.lstrip().startswith("service ") for line in proto.read_text().splitlines())


def generated_files(tree: Path) -> set[Path]:
    found = {p.relative_to(tree) for s in GENERATED_SUFFIXES for p in tree.rglob(f"*{s}")}
    found |= {p.relative_to(tree) for p in tree.rglob("__init__.py")}
    return found


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        expected, actual = generated_files(fresh), generated_files(PROTOS)
        stale = sorted(str(p) for p in expected if p not in actual)
        stale += sorted(str(p) for p in actual if p not in expected)
        stale += sorted(
            str(p) for p in expected & actual if not filecmp.cmp(fresh / p, PROTOS / p, shallow=False)
        )
    if stale:
        print("generated code is stale; run `make generate`:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print(f"generated code is current ({len(expected)} files)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the committed code differs")
    args = parser.parse_args()
    if args.check:
        return check()
    with tempfile.TemporaryDirectory() as tmp:
        # Generate first: a .proto that fails to compile leaves the committed code untouched.
        generate(Path(tmp))
        for old in generated_files(PROTOS):
            if old.name != "__init__.py" or (PROTOS / old).stat().st_size == 0:
                (PROTOS / old).unlink()
        for rel in generated_files(Path(tmp)):
            (PROTOS / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / rel, PROTOS / rel)
    print(f"generated {len(generated_files(PROTOS))} files under {PROTOS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
