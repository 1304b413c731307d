"""The usual card commands on an enrolled remote desk (no database, no issuer key here):
``card read|verify`` and ``card wipe`` do the card I/O locally and ask the centre;
``card-face`` and ``photo`` go through ``idsvc.desk_printing`` and the desk API.

``card read|verify`` check the certificate chain against the issuer CA the desk received
(signed) at enrolment, the challenge with the card itself, and the credential at the centre
(signature, status, holder, bound to the card's key), with the operator's session.

``card wipe`` needs the card's management key, from the same place as a remote issuance takes
it (``IDSVC_MANAGEMENT_KEY`` in the desk's environment or secret store, or
``--default-management-key`` for training cards; never an argument): the centre has no
per-card keys to hand out. What the centre adds is the decision: before the card is touched
it checks that the operator may wipe (role ``issuer``), audits the wipe as ``name@desk``, and
with ``--revoke-reason`` revokes the card's credential (or holds the revocation for approval
under maker-checker). No answer, no wipe.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cardio.card_face import CardRenderer
from idsvc.cli.desk_commands import remote_centre
from idsvc.config import Settings
from idsvc.desk import CardReport, inspect_card, wipe_card
from idsvc.desk_identity import desk_check_time
from idsvc.desk_printing import RemoteCardFaces
from idsvc.photos import PhotoInfo


def _now() -> datetime:
    return datetime.now(UTC)


def inspect_through_centre(reader: str, *, challenge: bool) -> CardReport:
    from idsvc.cli.card_commands import _open

    remote = remote_centre()
    ca = remote.identity.ca_certificate()
    remote.identity.session(now=_now())  # not signed in: say so before touching the card
    with _open(reader) as transport:
        return inspect_card(
            transport,
            ca_certificates=[ca],
            check_token=remote.verify_card,
            now=desk_check_time(_now()),
            challenge=challenge,
        )


def wipe_through_centre(
    reader: str, *, default_management_key: bool, revoke_reason: str | None
) -> tuple[dict[str, Any], list[str]]:
    """Ask the centre, then wipe; returns the centre's answer and what was removed."""
    from cardio.errors import NotFound
    from cardio.piv import Chuid, ObjectId, PivSession
    from idsvc.cli.card_commands import _open, card_secrets

    remote = remote_centre()
    secrets = card_secrets(Settings(), default_management_key=default_management_key)
    remote.identity.session(now=_now())
    with _open(reader) as transport:
        piv = PivSession(transport, extended=bool(getattr(transport, "extended_length", False)))
        try:
            card_uuid: str | None = str(Chuid.parse(piv.get_object(ObjectId.CHUID)).guid)
        except NotFound:
            card_uuid = None
        try:
            token: str | None = piv.get_object(ObjectId.CREDENTIAL).decode("utf-8", "replace")
        except NotFound:
            token = None
        # A wrong management key fails here, before the centre records or revokes anything.
        piv.authenticate(secrets.management_key_type, secrets.management_key)
        credential_id = None if token is None else remote.verify_card(token, None).credential_id
        answer = remote.allow_wipe(
            credential_id=credential_id, card_uuid=card_uuid, revoke_reason=revoke_reason
        )
        return answer, wipe_card(transport, secrets)


def remote_card_faces(dpi: int) -> RemoteCardFaces:
    remote = remote_centre()
    remote.identity.session(now=_now())
    return RemoteCardFaces(remote, CardRenderer(dpi=dpi))


def photo_through_centre(employee_id: str, data: bytes) -> PhotoInfo:
    a = remote_centre().store_photo(employee_id, data)
    return PhotoInfo(
        employee_id=a["employee_id"],
        width=a["width"],
        height=a["height"],
        face_bytes=a["face_bytes"],
        qr_bytes=a["qr_photo_bytes"],
        qr_media_type=a["qr_photo_type"],
        sha256=a["sha256"],
        updated_at=_now(),
    )
