"""The data-set fetcher against a real HTTP server on 127.0.0.1 serving a folder laid out like
shared/data (small real files: the first lines of real data files), and the manifest's
sha256/size against the real files we develop on."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import socket
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from adpilot.cli import main
from adpilot.config import Settings, get_settings
from adpilot.datasets_fetch import (
    MANIFEST,
    ChecksumError,
    DataFile,
    DatasetUnavailableError,
    DataSources,
    fetch_all,
    locate,
)

HEAD_LINES = 200


def _sources() -> DataSources:
    """The data sources of the settings now: these tests set the environment as a user does."""
    return DataSources.from_settings(get_settings())


class _Server:
    """http.server in a thread over ``root``; counts the GET requests it answered."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _head(path: Path, n: int = HEAD_LINES) -> bytes:
    with open(path, "rb") as fh:
        return b"".join(fh.readline() for _ in range(n))


@pytest.fixture
def mirror(tmp_path, shared_data):
    """A mirror folder with the first lines of the real Hillstrom file, and a manifest entry
    whose hash and size are those of that slice."""
    data = _head(shared_data / MANIFEST["hillstrom"].file)
    root = tmp_path / "mirror"
    (root / "campaigns").mkdir(parents=True)
    (root / "campaigns" / "hillstrom_email_rct.csv").write_bytes(data)
    entry = DataFile("hillstrom", "campaigns/hillstrom_email_rct.csv", "http://unused.invalid/x",
                     hashlib.sha256(data).hexdigest(), len(data))
    return root, {"hillstrom": entry}, data


@pytest.fixture
def no_data_dir(tmp_path, monkeypatch):
    """A cwd with no shared/data above it and ADPILOT_DATA_DIR unset."""
    monkeypatch.delenv("ADPILOT_DATA_DIR", raising=False)
    monkeypatch.delenv("ADPILOT_OFFLINE", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert not any((p / "shared").exists() or (p.parent / "shared").exists()
                   for p in (work, *work.parents)), "tmp has a shared folder above it"
    return work


def test_manifest_matches_the_files_we_develop_on(shared_data):
    for entry in MANIFEST.values():
        path = shared_data / entry.file
        assert path.stat().st_size == entry.size, entry.name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256, entry.name
        assert entry.url.startswith(("http://", "https://")), entry.name
    from adpilot.datasets import DATASETS

    assert set(DATASETS) <= set(MANIFEST)  # every loader's file has a source and a hash


def test_download_verifies_caches_and_the_second_fetch_makes_no_request(
        mirror, no_data_dir, monkeypatch, isolated_home):
    root, manifest, data = mirror
    with _Server(root) as server:
        monkeypatch.setenv("ADPILOT_DATASETS_MIRROR", server.url + "/")
        seen = []
        path = locate("hillstrom", _sources(), manifest=manifest,
                      progress=lambda f, d, t: seen.append((d, t)))
        assert path == isolated_home / "cache" / "data" / "campaigns" / "hillstrom_email_rct.csv"
        assert path.read_bytes() == data
        assert seen and seen[-1] == (len(data), len(data))  # progress reached the whole file
        assert server.requests == ["/campaigns/hillstrom_email_rct.csv"]
        again = fetch_all(_sources(), ["hillstrom"], manifest=manifest)
        assert again["hillstrom"] == {"file": "campaigns/hillstrom_email_rct.csv", "ok": True,
                                      "path": str(path), "from": "cache"}
        assert len(server.requests) == 1  # the cache answered
    assert not list(path.parent.glob(".*.part"))


def test_checksum_mismatch_is_a_clear_error_and_nothing_is_cached(
        mirror, no_data_dir, monkeypatch, isolated_home):
    root, manifest, data = mirror
    wrong = dataclasses.replace(manifest["hillstrom"], sha256="0" * 64)
    with _Server(root) as server:
        monkeypatch.setenv("ADPILOT_DATASETS_MIRROR", server.url)
        with pytest.raises(ChecksumError) as err:
            locate("hillstrom", _sources(), manifest={"hillstrom": wrong})
    msg = str(err.value)
    assert "campaigns/hillstrom_email_rct.csv" in msg and "0" * 64 in msg
    assert hashlib.sha256(data).hexdigest() in msg  # the actual hash
    cache = isolated_home / "cache" / "data"
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_server_down_is_a_clear_error_without_traceback(
        mirror, no_data_dir, monkeypatch, capsys):
    _, manifest, _ = mirror
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ADPILOT_DATASETS_MIRROR", f"http://127.0.0.1:{port}")
    with pytest.raises(DatasetUnavailableError, match="cannot download campaigns/hillstrom"):
        locate("hillstrom", _sources(), manifest=manifest)
    # the CLI: one line per failed file and exit 1, never a traceback
    code = main(["datasets", "fetch", "facebook_ads"])
    err = capsys.readouterr().err
    assert code == 1
    assert "failed facebook_ads" in err and "cannot download" in err
    assert "Traceback" not in err


def test_data_dir_takes_precedence_over_cache_and_download(
        mirror, tmp_path, no_data_dir, monkeypatch, shared_data):
    root, manifest, _ = mirror
    with _Server(root) as server:
        monkeypatch.setenv("ADPILOT_DATASETS_MIRROR", server.url)
        locate("hillstrom", _sources(), manifest=manifest)  # now cached
        monkeypatch.setenv("ADPILOT_DATA_DIR", str(shared_data))
        path = locate("hillstrom", _sources(), manifest=manifest)
        assert path == shared_data / "campaigns" / "hillstrom_email_rct.csv"
        assert len(server.requests) == 1
    # the library reads the loaders' files from there too
    from adpilot.datasets import load_dataset

    assert load_dataset("facebook_ads", _sources()).read == 1143


def test_offline_and_derived_files_say_what_to_set(no_data_dir, monkeypatch):
    monkeypatch.setenv("ADPILOT_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match="downloads are off"):
        locate("hillstrom", _sources())
    monkeypatch.delenv("ADPILOT_OFFLINE")
    with pytest.raises(DatasetUnavailableError, match="ADPILOT_DATASETS_MIRROR"):
        locate("upworthy", _sources())  # derived from its source: only a mirror can serve our file


def test_source_archives_are_unpacked_before_the_check(tmp_path, no_data_dir, monkeypatch,
                                                       shared_data):
    """Without a mirror the source of record is used, through its zip/gzip wrapping."""
    data = _head(shared_data / MANIFEST["amazon_fashion"].file, 50)
    root = tmp_path / "source"
    root.mkdir()
    (root / "AMAZON_FASHION_5.json.gz").write_bytes(gzip.compress(data))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("bank-full.csv", data)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("bank.zip", inner.getvalue())
    (root / "bank.zip").write_bytes(outer.getvalue())
    digest = hashlib.sha256(data).hexdigest()
    with _Server(root) as server:
        manifest = {
            "a": DataFile("a", "reviews/a.jsonl", f"{server.url}/AMAZON_FASHION_5.json.gz",
                          digest, len(data), unpack=("gzip",)),
            "b": DataFile("b", "campaigns/b.csv", f"{server.url}/bank.zip", digest, len(data),
                          unpack=("zip:bank.zip", "zip:bank-full.csv")),
        }
        got = fetch_all(_sources(), manifest=manifest)
    assert all(r["ok"] and r["from"] == "download" for r in got.values()), got
    assert Path(got["a"]["path"]).read_bytes() == data == Path(got["b"]["path"]).read_bytes()


def test_locate_uses_the_sources_it_is_given_not_the_environment(tmp_path, monkeypatch,
                                                                  shared_data):
    """The library reads no settings: an environment pointing elsewhere changes nothing."""
    monkeypatch.setenv("ADPILOT_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("ADPILOT_OFFLINE", "1")
    given = DataSources(cache_dir=tmp_path / "cache", data_dir=shared_data)
    assert locate("hillstrom", given) == shared_data / MANIFEST["hillstrom"].file
    with pytest.raises(DatasetUnavailableError, match="downloads are off"):
        locate("hillstrom", DataSources(cache_dir=tmp_path / "cache",
                                        data_dir=tmp_path / "none", offline=True))
    s = Settings(home=tmp_path / "home", data_dir=tmp_path / "d", datasets_mirror="http://m/",
                 offline=True)
    assert DataSources.from_settings(s) == DataSources(
        cache_dir=tmp_path / "home" / "cache" / "data", data_dir=tmp_path / "d",
        mirror="http://m/", offline=True)
