"""Fetches the Lyra v2 model files at the pinned commit and checks their sha256 sums.

    python -m soundstorm.runtime.codec.fetch DEST_DIR

For users with internet access; tests never download (they read the shared
folder or $SOUNDSTORM_CODEC_DIR). Each file is written under a temporary name
and renamed only once its checksum matches, so an interrupted or corrupted
download never leaves a file that looks valid.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.error
import urllib.request
from pathlib import Path

import grpc

from soundstorm.runtime.codec.base import CodecError
from soundstorm.runtime.codec.lyra import LYRA_COMMIT, LYRA_SHA256, sha256_of

SOURCE_URL = "https://raw.githubusercontent.com/google/lyra/{commit}/lyra/model_coeffs/{name}"
_TIMEOUT_S = 60


def fetch(dest, opener=urllib.request.urlopen) -> list[Path]:
    """Downloads the files missing or wrong in `dest`; returns the paths of all three.

    Raises:
      CodecError: UNAVAILABLE when a file cannot be downloaded (the message says how to
        install the files by hand); INVALID_ARGUMENT when one downloads with the wrong
        sha256 (nothing is written).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, expected in LYRA_SHA256.items():
        path = dest / name
        paths.append(path)
        if path.is_file() and sha256_of(path) == expected:
            print(f"{name}: present, checksum ok")
            continue
        url = SOURCE_URL.format(commit=LYRA_COMMIT, name=name)
        print(f"{name}: downloading {url}")
        try:
            with opener(url, timeout=_TIMEOUT_S) as response:
                data = response.read()
        except (urllib.error.URLError, OSError) as error:  # no network, DNS, refused, timeout
            reason = getattr(error, "reason", error)
            raise CodecError(
                f"could not download {url} ({reason}); on a machine without internet access "
                f"copy the three files ({', '.join(LYRA_SHA256)}) into {dest} or point "
                "SOUNDSTORM_CODEC_DIR at a folder that holds them", grpc.StatusCode.UNAVAILABLE
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise CodecError(f"{url} has sha256 {actual}, expected {expected}; nothing written")
        partial = path.with_name(name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soundstorm.runtime.codec.fetch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="folder to hold the three .tflite files")
    args = parser.parse_args(argv)
    try:
        fetch(args.dest)
    except (CodecError, OSError) as error:
        print(f"fetch: error: {error}", file=sys.stderr)
        return 2
    print(f"done; use it with: export SOUNDSTORM_CODEC_DIR={args.dest.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
