"""Where a build reads and writes: local paths, or fsspec URLs (``s3://``, ``gs://``, ``hf://``, ``memory://``, …).

Credentials and endpoints come from fsspec's own configuration, never from a recipe (a recipe, its plan and its
manifest are shared): the provider's usual environment (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``HF_TOKEN``),
``FSSPEC_<PROTOCOL>_<OPTION>`` variables (``FSSPEC_S3_ENDPOINT_URL=http://127.0.0.1:9000`` for a MinIO server) or
``~/.config/fsspec/*.json``. The protocol's package must be installed (``s3fs`` for ``s3://``, ``gcsfs``, ``adlfs``).
"""

from __future__ import annotations

import io
import os
import posixpath
from pathlib import Path

from corpusforge.errors import SourceError


def is_url(path: str | Path) -> bool:
    """Whether ``path`` names a file system other than the local one (``file://`` counts as local)."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def local_path(path: str | Path) -> Path:
    text = str(path)
    return Path(text.removeprefix("file://")).expanduser()


def url_fs(url: str):
    """``(filesystem, path inside it)`` for an fsspec URL; a missing protocol package is named."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as err:
        protocol = url.split("://", 1)[0]
        raise SourceError(
            f"{url}: reading {protocol}:// needs its fsspec package ({err}); e.g. `pip install s3fs` for s3://"
        ) from None
    except ValueError as err:
        raise SourceError(f"{url}: not a URL fsspec knows ({err})") from None
    # fsspec keeps one instance per store and caches its listings (s3fs, gcsfs, ...): a long-lived process (a
    # notebook, a resumed build) would glob, fingerprint and check an output against what the store held then
    fs.invalidate_cache()
    return fs, path


def glob_url(pattern: str) -> list[str]:
    """Sorted file URLs matching ``pattern`` (``**`` spans folders)."""
    fs, path = url_fs(pattern)
    found = fs.glob(path, detail=True)
    return sorted(fs.unstrip_protocol(name) for name, info in found.items() if info.get("type") == "file")


def open_file(path: str | Path, mode: str = "rb") -> io.IOBase:
    """A local file, or a remote one through fsspec (seekable, read in blocks)."""
    if not is_url(path):
        return open(local_path(path), mode)
    fs, inner = url_fs(str(path))
    return fs.open(inner, mode)


def file_info(path: str | Path) -> dict:
    """``bytes`` and a ``version``/``mtime_ns`` that changes when the file does: the resume check compares them."""
    if not is_url(path):
        stat = local_path(path).stat()
        return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    fs, inner = url_fs(str(path))
    info = fs.info(inner)
    version = next(
        (info[k] for k in ("ETag", "etag", "md5Hash", "LastModified", "mtime", "created") if info.get(k)), ""
    )
    return {"bytes": int(info.get("size") or 0), "version": str(version)}


def basename(path: str | Path) -> str:
    return posixpath.basename(str(path).rstrip("/")) if is_url(path) else Path(path).name


def common_root(paths: list[str]) -> str:
    """The folder every path is under (the URL's protocol kept)."""
    if not paths:
        return str(Path.cwd())
    if not is_url(paths[0]):
        return os.path.commonpath([str(Path(p).parent.resolve()) for p in paths])
    protocol = paths[0].split("://", 1)[0] + "://"
    inner = posixpath.commonpath([posixpath.dirname(p.split("://", 1)[1]) for p in paths])
    return protocol + inner


def relative(path: str, root: str) -> str:
    """``path`` relative to ``root`` (from `common_root`)."""
    if is_url(path):
        return posixpath.relpath(path.split("://", 1)[1], root.split("://", 1)[1])
    return os.path.relpath(path, root)


def hub_endpoint() -> str | None:
    """The Hub URL from ``HF_ENDPOINT`` as it is now (``huggingface_hub`` reads it once, when first imported): given
    to every ``huggingface_hub`` call, so pinning a Hub id and downloading it ask the same Hub."""
    value = os.environ.get("HF_ENDPOINT")
    return value.rstrip("/") if value else None
