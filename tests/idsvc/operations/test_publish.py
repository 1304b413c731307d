"""``idsvc publish``: static JWKS and status lists that an independent JOSE library accepts, a
revocation reaching the published bits, re-signing before expiry, atomic public files."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import time
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from joserfc import jwt
from joserfc.jwk import KeySet

from idsvc.config import Settings
from idsvc.services import Services
from tests.support.cli_runner import IDSVC, Cli
from tests.support.settings import NOW

ACTIVE = ("KH-MCS-010002", "LA-MOHA-000101")


def _status_of(out: Path, token: str) -> int:
    """The published status of a credential, read with joserfc and the spec's bit layout."""
    reference = jwt.decode(token, KeySet.import_key_set(cast(Any, _jwks(out)))).claims["status"]
    ref = reference["status_list"]
    name = ref["uri"].rsplit("/", 1)[-1]
    published = jwt.decode(
        (out / "status-lists" / name).read_text(), KeySet.import_key_set(cast(Any, _jwks(out)))
    )
    assert published.header["typ"] == "statuslist+jwt"
    lst = published.claims["status_list"]
    assert lst["bits"] == 2
    raw = zlib.decompress(base64.urlsafe_b64decode(lst["lst"] + "=" * (-len(lst["lst"]) % 4)))
    idx = ref["idx"]
    return int((raw[idx // 4] >> (2 * (idx % 4))) & 0b11)  # LSB first, 4 entries per byte


def _jwks(out: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((out / ".well-known" / "jwks.json").read_text())
    return doc


def test_published_files_verify_independently_and_follow_revocations(
    service: Services, tmp_path: Path
) -> None:
    out = tmp_path / "cdn"
    ops = service.operations
    first = service.credentials.issue(ACTIVE[0], actor="desk", now=NOW)
    second = service.credentials.issue(ACTIVE[1], actor="desk", now=NOW)

    report = ops.publish(out, now=NOW)
    lists = [p for p in report.written if p.startswith("status-lists/")]
    assert len(lists) == 1 and ".well-known/jwks.json" in report.written
    assert (out / "issuers" / "default" / "jwks.json").read_bytes() == (
        out / ".well-known" / "jwks.json"
    ).read_bytes()
    assert _status_of(out, first.token) == 0 and _status_of(out, second.token) == 0
    for path in out.rglob("*"):
        assert not path.name.endswith(".partial")
        want = 0o755 if path.is_dir() else 0o644  # a CDN or web server reads them
        assert stat.S_IMODE(path.stat().st_mode) == want, path

    # Nothing changed: nothing is rewritten (the CDN does not churn).
    again = ops.publish(out, now=NOW + timedelta(minutes=5))
    assert again.written == [] and set(lists) <= set(again.unchanged)

    # A revocation reaches the published list at the next run.
    service.credentials.revoke(first.id, reason="lost", by=None, now=NOW)
    after = ops.publish(out, now=NOW + timedelta(minutes=6))
    assert after.written == lists
    assert _status_of(out, first.token) == 1 and _status_of(out, second.token) == 0

    # Re-signed before expiry: past half of its lifetime, the list is signed again.
    lifetime = service.settings.status_list_lifetime
    assert after.next_due is not None
    assert after.next_due == NOW + timedelta(minutes=6) + lifetime / 2
    late = NOW + timedelta(minutes=6) + lifetime / 2 + timedelta(seconds=1)
    resigned = ops.publish(out, now=late)
    assert resigned.written == lists
    claims = jwt.decode(
        (out / lists[0]).read_text(), KeySet.import_key_set(cast(Any, _jwks(out)))
    ).claims
    assert claims["iat"] == int(late.timestamp())
    index = json.loads((out / "index.json").read_text())
    assert index["status_lists"][lists[0].rsplit("/", 1)[-1]]["exp"] == claims["exp"]


def test_publish_watch_follows_a_revocation(
    service: Services, settings: Settings, tmp_path: Path
) -> None:
    view = service.credentials.issue(ACTIVE[0], actor="desk", now=NOW)
    service.credentials.rotate_key(by=None, now=NOW)
    out = tmp_path / "bundle"
    cli = Cli(settings.home, str(settings.database_url))
    proc = subprocess.Popen(
        [IDSVC, "publish", "--out", str(out), "--watch", "--every", "1"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (out / "index.json").is_file(), proc)
        # The retired key stays published: what it signed still verifies offline.
        assert len(_jwks(out)["keys"]) >= 2  # type: ignore[arg-type]
        assert _status_of(out, view.token) == 0
        service.credentials.revoke(view.id, reason="stolen", by=None, now=NOW)
        _wait_for(lambda: _status_of(out, view.token) == 1, proc)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    raise AssertionError("idsvc publish --watch did not get there within 60 s")


def _other_user_reads(path: Path) -> bytes | None:
    """``path`` as read by another account (``nobody``), or None when that account is refused.
    A web server or CDN sync runs as its own user: this is what it would get."""
    import os
    import pwd

    nobody = pwd.getpwnam("nobody")
    assert os.geteuid() == 0, "reading as another user needs root (the test container is root)"
    proc = subprocess.run(
        ["cat", str(path)], capture_output=True, user=nobody.pw_uid, group=nobody.pw_gid
    )
    return proc.stdout if proc.returncode == 0 else None


def test_the_published_tree_is_public_and_the_data_folder_private(tmp_path: Path) -> None:
    import os
    import tempfile

    # The CLI runs under umask 077 (the data folder holds personal data and keys): the
    # published tree must still be readable by the web server's user, all the way down.
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'idsvc.sqlite3'}")
    assert cli("init").returncode == 0
    web_root = Path(tempfile.mkdtemp(prefix="idsvc-www-"))  # outside root's private tmp_path
    try:
        web_root.chmod(0o755)  # the web server's document root: traversable by its user
        out = web_root / "cdn" / "v1"
        r = cli("publish", "--out", str(out))
        assert r.returncode == 0, r.stderr
        jwks = out / "issuers" / "default" / "jwks.json"
        # every folder from the target down to each file: 0755, each file 0644
        for path in [out.parent, out, *out.rglob("*")]:
            want = 0o755 if path.is_dir() else 0o644
            assert stat.S_IMODE(path.stat().st_mode) == want, (path, oct(path.stat().st_mode))
        for rel in ("issuers/default/jwks.json", ".well-known/jwks.json", "index.json"):
            assert _other_user_reads(out / rel) == (out / rel).read_bytes(), rel
        assert json.loads(jwks.read_text())["keys"]
        # ... while the data folder stays the owner's alone
        home = cli.home
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert _other_user_reads(home / "idsvc.sqlite3") is None
        for key in (home / "keys").rglob("*"):
            if key.is_file() and key.suffix not in (".json", ".pem"):
                assert stat.S_IMODE(key.stat().st_mode) == 0o600, key

        # Publishing into the data folder would have to open it to the world: refused.
        inside = home / "public"
        r = cli("publish", "--out", str(inside))
        assert r.returncode == 23 and "inside the data folder" in r.stderr, r.stderr
        assert not inside.exists() and stat.S_IMODE(home.stat().st_mode) == 0o700
        r = cli("publish", "--out", str(home))
        assert r.returncode == 23 and stat.S_IMODE(home.stat().st_mode) == 0o700
    finally:
        import shutil

        shutil.rmtree(web_root)
        assert not os.path.exists(web_root)
