"""``idsvc publish --out DIR``: the public trust material as static files.

A CDN (or a phone app's bundle) serves the folder at ``IDSVC_PUBLIC_URL``, so the URLs inside
credentials resolve to these files without reaching the service::

    DIR/.well-known/jwks.json          the default issuer's JWKS
    DIR/issuers/<slug>/jwks.json       every issuer's JWKS
    DIR/status-lists/<name>            each status list as a signed statuslist+jwt
    DIR/index.json                     what was published: per list its exp and content digest

Each file is written beside its final name and renamed over it, so a reader (or a CDN sync)
sees the old file or the new one, never half of one. The tree is public by design: files
0644 and every folder publish creates 0755 whatever the CLI's umask (a web server reads them as
another user); a target inside the data folder (0700) is refused. JWKS go first: a verifier
that fetches a list signed by a new key finds that key already published.

A list is re-signed when its bits changed (a revocation must reach verifiers) or when less than
half of its lifetime (``exp - iat``, ``Settings.status_list_lifetime``) is left; otherwise it
is left alone, so the CDN does not churn. ``next_due`` says when the next re-signing is
needed at the latest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.credentials.issuers import Issuer
from idsvc.credentials.status_lists import build_list, status_list_token
from idsvc.errors import OperationRefused
from idsvc.formats.jws import JwsSigner
from idsvc.storage.tables import StatusListRow

INDEX = "index.json"
DEFAULT_JWKS = ".well-known/jwks.json"


@dataclass
class PublishReport:
    out: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    next_due: datetime | None = None


def _public_folder(path: Path) -> None:
    """Create ``path`` (and any missing parent) as 0755, whatever the umask: a web server or CDN
    sync reads the tree as another user, so every folder on the way must be traversable. A
    folder that already existed above the target is the operator's and left as it is."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)


def write_atomically(out: Path, rel: str, data: bytes) -> None:
    """Replace ``out/rel`` with ``data`` in one rename; the file (0644) and every folder from
    ``out`` down to it (0755) are world-readable: they are public by design."""
    path = out / rel
    folder = out
    for part in Path(rel).parent.parts:
        folder = folder / part
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)  # explicit: the CLI's umask is 077, a CDN needs to read these
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)  # a leftover of a killed run
    # O_EXCL | O_NOFOLLOW: a link planted at the partial name is never followed.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        os.fchmod(f.fileno(), 0o644)
    os.replace(partial, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def _refuse_private(out: Path, private: Path) -> None:
    """The published tree must be readable by others; inside the data folder (0700, database
    and keys) it either stays unreadable or the data folder would have to be opened."""
    target, home = out.resolve(), private.resolve()
    if target == home or target.is_relative_to(home):
        raise OperationRefused(
            f"{out} is inside the data folder {private} (IDSVC_HOME), which stays private: "
            "publish to a folder outside it (the web server's or CDN's)"
        )


def _read_index(out: Path) -> dict[str, Any]:
    try:
        index = json.loads((out / INDEX).read_bytes())
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def _put(out: Path, rel: str, data: bytes, report: PublishReport) -> None:
    path = out / rel
    try:
        same = path.read_bytes() == data
    except OSError:
        same = False
    if same:
        report.unchanged.append(rel)
        return
    write_atomically(out, rel, data)
    report.written.append(rel)


def publish(
    session: Session,
    issuers: list[Issuer],
    signer_for: Callable[[Issuer], JwsSigner],
    *,
    out: Path,
    now: datetime,
    ttl: int,
    lifetime: timedelta,
    default_slug: str,
    private: Path,
) -> PublishReport:
    """Write the files; ``private`` is the data folder, which the target may not be inside."""
    _refuse_private(out, private)
    _public_folder(out)
    out.chmod(0o755)
    report = PublishReport(out=out)
    previous = _read_index(out).get("status_lists", {})
    if not isinstance(previous, dict):
        previous = {}
    for issuer in issuers:
        jwks = (json.dumps(issuer.ring.jwks(), indent=2) + "\n").encode()
        _put(out, f"issuers/{issuer.slug}/jwks.json", jwks, report)
        if issuer.slug == default_slug:
            _put(out, DEFAULT_JWKS, jwks, report)
    by_id = {i.id: i for i in issuers}
    lists: dict[str, dict[str, Any]] = {}
    for row in session.execute(select(StatusListRow).order_by(StatusListRow.id)).scalars():
        name = row.uri.rsplit("/", 1)[-1]
        rel = f"status-lists/{name}"
        digest = hashlib.sha256(build_list(session, row).to_bytes()).hexdigest()
        before = previous.get(name)
        fresh = (
            isinstance(before, dict)
            and before.get("bits_sha256") == digest
            and isinstance(before.get("exp"), int)
            and now.timestamp() < before["exp"] - lifetime.total_seconds() / 2
            and (out / rel).is_file()
        )
        if fresh:
            assert isinstance(before, dict)
            lists[name] = before
            report.unchanged.append(rel)
        else:
            issuer = by_id[row.issuer_id]
            token = status_list_token(
                session,
                row,
                signer_for(issuer),
                iss=issuer.iss,
                now=now,
                ttl=ttl,
                lifetime=lifetime,
            )
            write_atomically(out, rel, token.encode())
            report.written.append(rel)
            exp = int((now + lifetime).timestamp())
            lists[name] = {"uri": row.uri, "exp": exp, "bits_sha256": digest}
        due = datetime.fromtimestamp(
            lists[name]["exp"] - lifetime.total_seconds() / 2, tz=now.tzinfo
        )
        report.next_due = due if report.next_due is None else min(report.next_due, due)
    index = {
        "published_at": now.isoformat(),
        "issuers": [i.slug for i in issuers],
        "status_lists": lists,
    }
    # Last: the index describes files that are all in place already.
    write_atomically(out, INDEX, (json.dumps(index, indent=1, sort_keys=True) + "\n").encode())
    return report
