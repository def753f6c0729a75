"""Where the age/gender network's files are, checked once per process, and how they get there (``install``).

The network is face-api.js's AgeGenderNet (Vincent Mühler's; MIT), as the npm package ``@vladmandic/face-api``
1.7.15 ships it (MIT): a tfjs weights manifest and one 430 KB binary. They come from the npm registry, a package
registry like PyPI, once at set-up (``make`` runs ``python -m facecurate.curate.embed.agegender_models``), never
at run time; the tarball is checked against the registry's sha512 and each file against its sha256 here. The
package's ESM bundle is kept beside them: it is the reference the PyTorch port is checked against (tests).

Why npm: no PyPI package carries age and gender weights; dlib's wheel reads identity, not gender or age.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

from ..errors import InputError
from ..models import sha256_file

PACKAGE, VERSION = "@vladmandic/face-api", "1.7.15"
TARBALL_URL = "https://registry.npmjs.org/@vladmandic/face-api/-/face-api-1.7.15.tgz"
TARBALL_SHA512 = "WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="  # npm's dist.integrity
WEIGHTS, MANIFEST = "age_gender_model.bin", "age_gender_model-weights_manifest.json"
REFERENCE, LICENSE = "face-api.esm.js", "LICENSE"
#: file -> (path inside the tarball, sha256); a different file is refused, not silently used
FILES = {WEIGHTS: ("package/model/age_gender_model.bin", "49f92bbc0afef2342c4385e4a2b0acb6d7a727c6f0aa539499719a81acf9abaa"),
         MANIFEST: ("package/model/age_gender_model-weights_manifest.json",
                    "74b60bf3ebf981bf4e661e9cca3a185614e10b25d797118b62e2a68d3ff2569f"),
         REFERENCE: ("package/dist/face-api.esm.js", "14f0e9813f6d9f14a9cdafb6543a74835ebb13085090e2942310a7a737f55d9a"),
         LICENSE: ("package/LICENSE", "9a3442b79acaf4fbc7c2e07b7e2d8f84af9bb3871bf08a69d80304ab00640e9a")}
ENV = "FACECURATE_FACE_API"  # a folder holding the files, instead of the environment's own
INSTALL_HINT = "python -m facecurate.curate.embed.agegender_models"
_CHECKED: dict[str, Path] = {}


def model_dir() -> Path:
    """``$FACECURATE_FACE_API``, else ``<sys.prefix>/share/facecurate/face-api-<version>`` (inside the venv)."""
    env = os.environ.get(ENV)
    return Path(env) if env else Path(sys.prefix) / "share" / "facecurate" / f"face-api-{VERSION}"


def model_file(name: str) -> Path:
    """Path of ``name`` (one of ``FILES``), its sha256 checked once per process; InputError naming the fix."""
    if name not in FILES:
        raise InputError(f"{name}: not a file of the age/gender network (only {', '.join(FILES)})")
    path = model_dir() / name
    if _CHECKED.get(name) == path:
        return path
    if not path.is_file():
        raise InputError(f"{path}: the age/gender network is not installed; run `{INSTALL_HINT}` "
                         f"(or `make venv`: {PACKAGE} {VERSION} from the npm registry)")
    digest = sha256_file(path)
    if digest != FILES[name][1]:
        raise InputError(f"{path}: sha256 {digest[:12]}..., expected {FILES[name][1][:12]}... (another or a damaged copy); "
                         f"run `{INSTALL_HINT}` again")
    _CHECKED[name] = path
    return path


def ready() -> None:
    """InputError with the install line when the network's files are missing or changed."""
    model_file(WEIGHTS)
    model_file(MANIFEST)


def _unpack(tarball: bytes, dest: Path) -> None:
    """The four files of ``FILES`` from the npm tarball, each checked, written atomically into ``dest``."""
    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != TARBALL_SHA512:
        raise InputError(f"{PACKAGE} {VERSION}: the tarball's sha512 is not the registry's ({digest[:16]}...); not installed")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for name, (member, sha) in FILES.items():
            data = tar.extractfile(member).read()
            if hashlib.sha256(data).hexdigest() != sha:
                raise InputError(f"{PACKAGE} {VERSION}: {member} is not the expected file; not installed")
            tmp = dest / (name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest / name)


def install(dest: Path | None = None, tarball: Path | None = None, timeout: float = 120.0) -> Path:
    """Put the files into ``dest`` (``model_dir()``) from the npm registry, or from a local ``tarball`` (``npm pack``'s
    file); nothing is fetched when they are already there and intact. Returns the folder."""
    dest = dest or model_dir()
    if all((dest / n).is_file() and sha256_file(dest / n) == sha for n, (_, sha) in FILES.items()):
        return dest
    if tarball is not None:
        try:
            data = Path(tarball).read_bytes()
        except OSError as e:
            raise InputError(f"{tarball}: cannot read it ({e.strerror or e}); pass npm pack's .tgz of {PACKAGE} {VERSION}") from None
    else:
        try:
            with urllib.request.urlopen(TARBALL_URL, timeout=timeout) as r:
                data = r.read()
        except OSError as e:
            raise InputError(f"{TARBALL_URL}: {e}; fetch it another way (`npm pack {PACKAGE}@{VERSION}`) and run "
                             f"`{INSTALL_HINT} --tarball FILE`") from None
    _unpack(data, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=f"Install the age/gender network's files ({PACKAGE} {VERSION}, MIT) "
                                             "from the npm registry into this environment.")
    ap.add_argument("--dest", type=Path, default=None, help=f"folder (default: ${ENV} or {model_dir()})")
    ap.add_argument("--tarball", type=Path, default=None, help="a local copy of the package (npm pack's .tgz) instead "
                                                               "of the registry")
    a = ap.parse_args(argv)
    try:
        print(f"age/gender network: {install(a.dest, a.tarball)}")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
