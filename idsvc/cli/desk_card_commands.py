"""The usual card commands on an enrolled remote desk (no database, no issuer key here):
``card read|verify`` and ``card wipe`` do the card I/O locally and ask the centre;
``card-face`` and ``photo`` go through ``idsvc.desk_client.printing`` and the desk API.

``card read|verify`` check the certificate chain against the issuer CA the desk received
(signed) at enrolment, the challenge with the card itself, and the credential at the centre
(signature, status, holder, bound to the card's key), with the operator's session.

``card wipe`` needs the card's management key, from the same place as a remote issuance takes
it (``IDSVC_MANAGEMENT_KEY`` in the desk's environment or secret store, or
``--default-management-key`` for training cards; never an argument): the centre has no
per-card keys to hand out. What the centre adds is the decision: before the card is touched
it checks that the operator may wipe (role ``issuer``), audits the wipe as ``name@desk``, and
with ``--revoke-reason`` revokes the card's credential (or holds the revocation for approval
under maker-checker). No answer, no wipe, unless the operator passes ``--offline``: then a
desk that cannot reach its centre (or a machine with neither a register nor a centre) wipes
and keeps a report (``pending-wipes.json``, 0600) that goes to the centre with the next
request; until a registrar revokes it, the card's credential stays live.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cardio.card_face import CardRenderer
from cardio.transport import Transport
from idsvc.cli import common
from idsvc.cli.card_commands import open_reader
from idsvc.cli.desk_commands import centre_client
from idsvc.desk_client.cards import CardOnHand, CardReport, CardSecrets, inspect_card, wipe_card
from idsvc.desk_client.centre_client import CentreClient
from idsvc.desk_client.folder import desk_folder
from idsvc.desk_client.identity import DeskIdentity, desk_check_time
from idsvc.desk_client.printing import RemoteCardFaces
from idsvc.errors import CentreUnreachable, DeskRefused
from idsvc.register.photos import PhotoInfo


def inspect_through_centre(reader: str, *, challenge: bool) -> CardReport:
    remote = centre_client()
    ca = remote.identity.ca_certificate()
    remote.identity.session(now=common.now())  # not signed in: say so before touching the card
    with open_reader(reader) as transport:
        return inspect_card(
            transport,
            ca_certificates=[ca],
            check_token=remote.verify_card,
            now=desk_check_time(common.now()),
            challenge=challenge,
        )


@dataclass(frozen=True)
class WipeDone:
    removed: list[str]
    answer: dict[str, Any] | None  # the centre's, when it was asked
    report: dict[str, Any] | None  # kept here for the centre, when it could not be asked


OpenCard = Callable[[], AbstractContextManager[Transport]]


def no_register_text(home: Path) -> str:
    return (
        "no register here and no centre to ask (this machine is neither the centre nor an "
        "enrolled desk): a wipe now would be recorded nowhere and the card's credential would "
        "stay live. Wipe it at the centre or an enrolled desk, or pass --offline to wipe "
        f"anyway: the wipe is kept in {desk_folder(home) / 'pending-wipes.json'} and reported "
        "at this machine's next request to a centre (as an enrolled desk); until then the "
        "credential stays live, so tell a registrar to revoke it"
    )


def wipe_away_from_register(
    open_card: OpenCard,
    *,
    secrets: CardSecrets,
    revoke_reason: str | None,
    offline: bool,
    home: Path,
    now: Callable[[], datetime] = common.now,
    remote: CentreClient | None = None,
) -> WipeDone:
    """``card wipe`` where there is no register: through the centre at an enrolled desk
    (``remote``, by default this desk's client of it); without a centre to ask, only with
    ``offline`` (the wipe is then reported later)."""
    identity = DeskIdentity(home)
    if identity.enrolled():
        try:
            return _wipe_through_centre(
                remote or centre_client(), open_card, secrets, revoke_reason, now
            )
        except CentreUnreachable as exc:
            if not offline:
                raise CentreUnreachable(
                    f"{exc} The card was not wiped: a wipe needs the centre's answer. To wipe "
                    "it anyway, pass --offline: the wipe is reported at the next request to "
                    "the centre, and the credential stays live until a registrar revokes it."
                ) from exc
    elif not offline:
        raise DeskRefused(no_register_text(home))
    if revoke_reason is not None:
        raise DeskRefused(
            "--revoke-reason needs the register or the centre, and neither can be asked: wipe "
            "with --offline alone, and revoke once the wipe has been reported"
        )
    try:
        operator: str | None = identity.session(now=now()).operator
    except DeskRefused:
        operator = None
    reports: list[dict[str, Any]] = []

    def keep_report(card: CardOnHand) -> None:
        report = {
            "report_id": str(uuid.uuid4()),
            "card_uuid": card.card_uuid,
            "credential_id": card.claimed_credential_id,
            "wiped_at": now().isoformat(),
            "operator": operator,
        }
        identity.add_wipe_report(report)  # before the card is touched: a report too many
        reports.append(report)  # is safer than a wipe nobody hears of

    with open_card() as transport:
        removed = wipe_card(transport, secrets, before=keep_report)
    return WipeDone(removed, None, reports[0])


def _wipe_through_centre(
    remote: CentreClient,
    open_card: OpenCard,
    secrets: CardSecrets,
    revoke_reason: str | None,
    now: Callable[[], datetime],
) -> WipeDone:
    """Ask the centre, then wipe (see the module docstring)."""
    try:
        remote.identity.session(now=now())
    except DeskRefused:
        remote.desk_state()  # nobody signed in: unreachable → offline is offered, else refuse
        raise
    answers: list[dict[str, Any]] = []

    def ask(card: CardOnHand) -> None:
        token = card.token
        credential_id = None if token is None else remote.verify_card(token, None).credential_id
        answers.append(
            remote.allow_wipe(
                credential_id=credential_id, card_uuid=card.card_uuid, revoke_reason=revoke_reason
            )
        )

    with open_card() as transport:
        removed = wipe_card(transport, secrets, before=ask)
    return WipeDone(removed, answers[0], None)


def remote_card_faces(dpi: int) -> RemoteCardFaces:
    remote = centre_client()
    remote.identity.session(now=common.now())
    return RemoteCardFaces(remote, CardRenderer(dpi=dpi))


def photo_through_centre(employee_id: str, data: bytes) -> PhotoInfo:
    a = centre_client().store_photo(employee_id, data)
    return PhotoInfo(
        employee_id=a["employee_id"],
        width=a["width"],
        height=a["height"],
        face_bytes=a["face_bytes"],
        qr_bytes=a["qr_photo_bytes"],
        qr_media_type=a["qr_photo_type"],
        sha256=a["sha256"],
        updated_at=common.now(),
    )
