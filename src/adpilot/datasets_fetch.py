"""Where the public data sets come from: a manifest with each file's public source of record,
its sha256 and size, and a fetcher that finds or downloads a verified copy.

A file is looked for, in order:

1. ``ADPILOT_DATA_DIR`` — an offline folder laid out like ``shared/data`` (what CI and the
   development machines use; its files are trusted as they are);
2. a ``shared/data`` folder beside or above the working directory (developers' checkouts);
3. the download cache ``<cache>/data/<file>`` (default ``~/.adpilot/cache/data``), whose copy
   must match the manifest's sha256;
4. a download, unless ``ADPILOT_OFFLINE`` is set: from ``ADPILOT_DATASETS_MIRROR`` (a base URL
   serving the files laid out like ``shared/data``: an internal mirror) when set, else from the
   source of record. The bytes must match the sha256 (a mismatch names the file, the expected
   and the actual hash, and nothing is cached); the file is written atomically.

The sha256 and size are those of the exact files adpilot is developed and evaluated on. The URL
is the source of record: where our file is the source's own file (possibly inside a zip or gzip,
see ``unpack``) it is downloaded from there; where our file was derived from the source (a
subset, a format conversion) the source cannot give the same bytes, so that file comes only from
a mirror or the offline folder, and the error says so.

Where to look is a :class:`DataSources` the caller passes in (a shell builds it with
:meth:`DataSources.from_settings`); this module reads no settings.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adpilot.errors import ChecksumError, DatasetUnavailableError, InputError

Progress = Callable[[str, int, int], None]  # (file, bytes done, bytes in all or 0)
_CHUNK = 1 << 16


@dataclass(frozen=True)
class DataFile:
    """One file of the manifest. ``file`` is relative to a data folder laid out like
    ``shared/data``; ``unpack`` turns the downloaded bytes into the file (``gzip``,
    ``zip:<member>``, applied in order); ``derived`` says how our file was made from the
    source when it is not the source's own bytes (then only a mirror can serve it)."""

    name: str
    file: str
    url: str
    sha256: str
    size: int
    unpack: tuple[str, ...] = ()
    derived: str | None = None


MANIFEST: dict[str, DataFile] = {f.name: f for f in (
    DataFile("womens_clothing", "reviews/womens_clothing_ecommerce_reviews.csv",
             "https://www.kaggle.com/api/v1/datasets/download/nicapotato/"
             "womens-ecommerce-clothing-reviews",
             "bd93cc515747ad1f87b8bc863c9e40da758509e6db6506a96d06976e61e36ee0", 8483448,
             unpack=("zip:Womens Clothing E-Commerce Reviews.csv",)),
    DataFile("amazon_fashion", "reviews/amazon_fashion_5core.jsonl",
             "https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall/AMAZON_FASHION_5.json.gz",
             "93391e7049796751218c9b56ba98120b1b14fd5f5303284242fa9445e87b6d29", 1413471,
             unpack=("gzip",)),
    DataFile("amazon_beauty", "reviews/amazon_beauty_5core.jsonl",
             "https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall/All_Beauty_5.json.gz",
             "2216c07d74d92744fefcff3cfe9eac5831634bcc77bfb2a47352f7d51f96cb86", 2457643,
             unpack=("gzip",)),
    DataFile("online_shopping_zh", "reviews/online_shopping_10_cats_zh.csv",
             "https://raw.githubusercontent.com/SophonPlus/ChineseNlpCorpus/master/datasets/"
             "online_shopping_10_cats/online_shopping_10_cats.zip",
             "f6c5b724122d8547b700ac4524898eb7e28abbee63f798e95a8faa408829afdb", 11299695,
             unpack=("zip:online_shopping_10_cats.csv",)),
    DataFile("hillstrom", "campaigns/hillstrom_email_rct.csv",
             "http://www.minethatdata.com/Kevin_Hillstrom_MineThatData_E-MailAnalytics_"
             "DataMiningChallenge_2008.03.20.csv",
             "ff9e59285e9dc3f5fa3e0975419e6631ea5bdccd65d818991473d2367e02979c", 3964975),
    DataFile("bank_marketing", "campaigns/bank_marketing_full.csv",
             "https://archive.ics.uci.edu/static/public/222/bank+marketing.zip",
             "d1513ec63b385506f7cfce9f2c5caa9fe99e7ba4e8c3fa264b3aaf0f849ed32d", 4610348,
             unpack=("zip:bank.zip", "zip:bank-full.csv")),
    DataFile("facebook_ads", "campaigns/facebook_ad_conversions.csv",
             "https://www.kaggle.com/api/v1/datasets/download/loveall/clicks-conversion-tracking",
             "fdaf7b7b4d0d2a853b94fca89ca014b695b62bd4cfc3792f4b04d1d7b5f029c7", 60939,
             unpack=("zip:KAG_conversion_data.csv",)),
    DataFile("upworthy", "copy/upworthy_headline_tests.csv", "https://osf.io/jd64p/",
             "2fef4eee46385835502d7929dba976bdecd50aa8d7d84054144bfe06da6efa42", 8812940,
             derived="the exploratory packages of the Upworthy Research Archive, tests that "
                     "started before week 201445, with an archive_row column"),
    DataFile("adgen_zh", "copy/adgen_zh.jsonl",
             "https://cloud.tsinghua.edu.cn/f/b3f119a008264b1cabd1/?dl=1",
             "f183fd6e7f7f631a654dbbea6c697868012c8d1bd2fe443620eaf6dfcce3cd67", 409788,
             derived="the AdvertiseGen dev set (ChatGLM's AdvertiseGen.tar.gz) grouped by "
                     "product, attributes parsed"),
    DataFile("online_retail", "transactions/uci_online_retail.parquet",
             "https://archive.ics.uci.edu/static/public/352/online+retail.zip",
             "399de155a1c07e4bc89d8ef4f75d619c70a6b4ed39cc76ea54d56c2c939fb72b", 3645565,
             derived="'Online Retail.xlsx' from the UCI zip converted to Parquet"),
)}


def entry(name: str, manifest: dict[str, DataFile] | None = None) -> DataFile:
    """The manifest entry ``name``; an unknown name is an input error listing the known ones."""
    manifest = MANIFEST if manifest is None else manifest
    if name not in manifest:
        raise InputError(f"unknown data set {name!r}; expected one of {', '.join(manifest)}")
    return manifest[name]


@dataclass(frozen=True)
class DataSources:
    """Where data set files are looked for and fetched: ``cache_dir`` (the download cache),
    ``data_dir`` (an offline folder laid out like ``shared/data``; None: a ``shared/data``
    beside or above the working directory, looked for at each call), ``mirror`` (a base URL
    serving the files laid out like ``shared/data``) and ``offline`` (never download)."""

    cache_dir: Path
    data_dir: Path | None = None
    mirror: str | None = None
    offline: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> DataSources:
        """``ADPILOT_CACHE_DIR or ADPILOT_HOME/cache``/data, ``ADPILOT_DATA_DIR``,
        ``ADPILOT_DATASETS_MIRROR`` and ``ADPILOT_OFFLINE`` of ``settings``."""
        return cls(cache_dir=(settings.cache_dir or settings.home / "cache") / "data",
                   data_dir=Path(settings.data_dir) if settings.data_dir else None,
                   mirror=settings.datasets_mirror or None, offline=bool(settings.offline))


def dev_data_dir(sources: DataSources) -> Path | None:
    """``sources.data_dir``, else the first ``shared/data`` beside or above the cwd, else None."""
    if sources.data_dir:
        return Path(sources.data_dir)
    here = Path.cwd().resolve()
    for base in (here, *here.parents):
        for candidate in (base / "shared" / "data", base.parent / "shared" / "data"):
            if candidate.is_dir():
                return candidate
    return None


_VERIFIED: dict[tuple[str, int, float], str] = {}  # (path, size, mtime) -> sha256, per process


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per process while its size and mtime do not change."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def cached_file(df: DataFile, sources: DataSources) -> Path | None:
    """The cached copy of ``df`` in ``sources.cache_dir`` when it is there and matches the
    sha256."""
    path = sources.cache_dir / df.file
    if path.is_file() and path.stat().st_size == df.size and file_sha256(path) == df.sha256:
        return path
    return None


def locate(name: str, sources: DataSources, *, manifest: dict[str, DataFile] | None = None,
           download: bool | None = None, progress: Progress | None = None) -> Path:
    """A local path of data set file ``name``, found or fetched from ``sources`` in the order
    of the module docstring. ``download`` (default: unless ``sources.offline``) allows step 4.
    Raises :class:`DatasetUnavailableError` saying what was tried."""
    df = entry(name, manifest)
    tried = []
    base = dev_data_dir(sources)
    if base is not None:
        if (base / df.file).is_file():
            return base / df.file
        tried.append(f"not in the data folder {base}")
    else:
        tried.append("no data folder (ADPILOT_DATA_DIR unset, no shared/data above the cwd)")
    hit = cached_file(df, sources)
    if hit is not None:
        return hit
    tried.append(f"not in the download cache {sources.cache_dir}")
    if download is None:
        download = not sources.offline
    if not download:
        tried.append("downloads are off (ADPILOT_OFFLINE)")
        raise DatasetUnavailableError(f"data set {name} ({df.file}) is unavailable: "
                                      + "; ".join(tried),
                                      short=f"data set {name} not found here, downloads off")
    try:
        return fetch(df, sources, progress=progress)
    except DatasetUnavailableError as exc:
        raise DatasetUnavailableError("; ".join([*tried, str(exc)]),
                                      short=f"data set {name} not found here and {exc.short}"
                                      ) from None


def source_url(df: DataFile, sources: DataSources) -> tuple[str, tuple[str, ...]]:
    """(URL to download, unpack steps): the mirror's copy of our file when
    ``sources.mirror`` is set, else the source of record (not possible for a derived file)."""
    mirror = sources.mirror
    if mirror:
        return mirror.rstrip("/") + "/" + urllib.request.pathname2url(df.file).lstrip("/"), ()
    if df.derived:
        raise DatasetUnavailableError(
            f"{df.file} is derived from its source ({df.derived}; source of record {df.url}), "
            "so it cannot be downloaded from there: set ADPILOT_DATASETS_MIRROR to a mirror "
            "holding the prepared file, or ADPILOT_DATA_DIR to a folder with it",
            short="no mirror is set (ADPILOT_DATASETS_MIRROR) for this derived file")
    return df.url, df.unpack


_UNREACHABLE: set[str] = set()  # hosts that failed this process: do not wait on them again


def fetch(df: DataFile, sources: DataSources, *, progress: Progress | None = None,
          timeout: float = 20.0) -> Path:
    """Download ``df`` into ``sources.cache_dir`` (or return the verified cached copy) and
    return its path."""
    hit = cached_file(df, sources)
    if hit is not None:
        return hit
    url, unpack = source_url(df, sources)
    host = urllib.parse.urlsplit(url).netloc
    if host in _UNREACHABLE:
        raise DatasetUnavailableError(f"cannot download {df.file}: {host} was unreachable "
                                      "earlier in this process",
                                      short=f"the download failed ({host} unreachable)")
    target = sources.cache_dir / df.file
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        _download(url, tmp, df.file, progress, timeout)
        if unpack:
            data = tmp.read_bytes()
            for step in unpack:
                data = _unpack(data, step, url)
            tmp.write_bytes(data)
        actual = file_sha256(tmp)
        if actual != df.sha256:
            raise ChecksumError(f"{df.file} downloaded from {url} does not match the manifest: "
                                f"expected sha256 {df.sha256}, got {actual} "
                                f"({tmp.stat().st_size:,} bytes, expected {df.size:,}); "
                                "nothing was cached")
        os.replace(tmp, target)  # atomic: readers see no file or the whole verified file
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if not isinstance(exc, urllib.error.HTTPError):
            _UNREACHABLE.add(host)
        raise DatasetUnavailableError(f"cannot download {df.file} from {url}: "
                                      f"{_reason(exc)}",
                                      short=f"the download failed ({_reason(exc)})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _download(url: str, tmp: Path, label: str, progress: Progress | None, timeout: float) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "adpilot"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(tmp, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while chunk := resp.read(_CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(label, done, total)


def _unpack(data: bytes, step: str, url: str) -> bytes:
    if step == "gzip":
        return gzip.decompress(data)
    if step.startswith("zip:"):
        member = step[4:]
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = {Path(n).name: n for n in zf.namelist()}
                return zf.read(names.get(member, member))
        except (zipfile.BadZipFile, KeyError) as exc:
            raise DatasetUnavailableError(f"{url}: expected a zip holding {member}: {exc}") from None
    raise ValueError(f"unknown unpack step {step!r}")


def fetch_all(sources: DataSources, names: list[str] | None = None, *,
              progress: Progress | None = None,
              manifest: dict[str, DataFile] | None = None) -> dict[str, dict]:
    """Locate or download each named file (default: all) from ``sources``; per file its path
    and where it came from, or the error. Never raises for one file's failure: the others
    still come."""
    manifest = MANIFEST if manifest is None else manifest
    out: dict[str, dict] = {}
    for name in names or list(manifest):
        df = entry(name, manifest)
        before = cached_file(df, sources)
        try:
            path = locate(name, sources, manifest=manifest, progress=progress)
        except InputError as exc:
            out[name] = {"file": df.file, "ok": False, "error": str(exc)}
            continue
        origin = ("cache" if before is not None and path == before
                  else "download" if path.is_relative_to(sources.cache_dir) else "data folder")
        out[name] = {"file": df.file, "ok": True, "path": str(path), "from": origin}
    return out
