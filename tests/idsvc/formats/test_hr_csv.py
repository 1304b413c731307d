"""idsvc.formats.hr_csv: the sample export, encodings, normalisation, every reject, line numbers."""

from __future__ import annotations

import csv
import dataclasses
import io
import unicodedata
from datetime import date
from pathlib import Path

import pytest

from idsvc.formats.hr_csv import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    Category,
    EmploymentStatus,
    HrFileError,
    HrRecord,
    RowReject,
    parse_hr_csv,
)
from idsvc.formats.text_rules import unwanted_character

SAMPLE = (Path(__file__).parents[2] / "data" / "hr_sample.csv").read_bytes()
TODAY = date(2026, 11, 23)
HEADER = ",".join(COLUMNS)
BASE = {
    "employee_id": "LA-MOHA-000200",
    "name_local": "ບຸນມີ ສີຫາລາດ",
    "name_latin": "Bounmy Sihalath",
    "sex": "M",
    "date_of_birth": "1980-05-17",
    "ministry": "Ministry of Home Affairs",
    "unit": "Department of Personnel",
    "position": "Officer",
    "grade": "K3",
    "category": "civil_servant",
    "status": "active",
    "status_date": "2005-10-01",
    "hire_date": "2005-10-01",
    "office": "Vientiane",
    "ministry_local": "ກະຊວງພາຍໃນ",
    "position_local": "ພະນັກງານ",
    "contract_end": "",
    "national_id": "",
}


def row(**overrides: str) -> str:
    out = io.StringIO()
    # The writer quotes only fields holding its own line terminator, so give it "\n".
    csv.writer(out, lineterminator="\n").writerow([{**BASE, **overrides}[c] for c in COLUMNS])
    return out.getvalue().removesuffix("\n")


def parse(*lines: str, newline: str = "\n") -> tuple[list[HrRecord], list[RowReject]]:
    data = newline.join([HEADER, *lines]) + newline
    result = parse_hr_csv(data.encode("utf-8"), today=TODAY)
    return result.records, result.rejects


def reject_of(**overrides: str) -> RowReject:
    records, rejects = parse(row(**overrides))
    assert records == [] and len(rejects) == 1
    return rejects[0]


# --- the sample and its variants ----------------------------------------------------------


def test_sample_parses_to_twelve_records() -> None:
    result = parse_hr_csv(SAMPLE, today=TODAY)
    assert result.rejects == []
    assert len(result.records) == 12
    first = result.records[0]
    assert first == HrRecord(
        employee_id="LA-MOHA-000101",
        name_local="ສົມພອນ ແກ້ວມະນີ",
        name_latin="Somphone Keomany",
        sex="F",
        date_of_birth=date(1984, 3, 12),
        ministry="Ministry of Home Affairs",
        unit="Department of Civil Service Management",
        position="Deputy Director",
        grade="K5",
        category=Category.CIVIL_SERVANT,
        status=EmploymentStatus.ACTIVE,
        status_date=date(2010, 9, 1),
        hire_date=date(2010, 9, 1),
    )
    by_id = {r.employee_id: r for r in result.records}
    assert by_id["KH-MCS-010001"].name_local == "ព្រុំ សុខា"
    assert by_id["KH-MEF-120077"].status is EmploymentStatus.SUSPENDED
    assert by_id["KH-MOI-440120"].category is Category.TEMPORARY
    assert by_id["KH-MCS-010003"].status == "deceased"  # StrEnum compares as text


def test_sample_text_is_kept_exactly() -> None:
    """The sample is already NFC: parsing changes no character of any name."""
    lines = SAMPLE.decode("utf-8").splitlines()[1:]
    records = parse_hr_csv(SAMPLE, today=TODAY).records
    for line, record in zip(lines, records, strict=True):
        fields = line.split(",")
        assert (record.name_local, record.name_latin) == (fields[1], fields[2])


def test_bom_and_crlf_give_identical_records() -> None:
    plain = parse_hr_csv(SAMPLE, today=TODAY).records
    variant = b"\xef\xbb\xbf" + SAMPLE.replace(b"\n", b"\r\n")
    assert parse_hr_csv(variant, today=TODAY).records == plain
    assert [r.content_hash() for r in parse_hr_csv(variant, today=TODAY).records] == [
        r.content_hash() for r in plain
    ]


def test_columns_in_another_order() -> None:
    reader = list(csv.reader(io.StringIO(SAMPLE.decode("utf-8"), newline="")))
    order = list(reversed(range(len(reader[0]))))
    out = io.StringIO()
    csv.writer(out).writerows([[r[i] for i in order] for r in reader])
    shuffled = parse_hr_csv(out.getvalue().encode("utf-8"), today=TODAY)
    assert shuffled.records == parse_hr_csv(SAMPLE, today=TODAY).records


def test_header_only_and_blank_lines() -> None:
    assert parse() == ([], [])
    records, rejects = parse("", row(), "", ",,,,,,,,,,,,", "")
    assert len(records) == 1 and rejects == []


def test_fields_are_stripped_and_optional_fields_may_be_empty() -> None:
    records, _ = parse(row(name_latin="  Bounmy Sihalath ", sex="", unit="", hire_date=""))
    assert records[0].name_latin == "Bounmy Sihalath"
    assert (records[0].sex, records[0].unit, records[0].hire_date) == ("", "", None)


# --- Unicode normalisation ----------------------------------------------------------------


def test_nfd_lao_name_becomes_nfc() -> None:
    # Typed with the tone mark (U+0EC8, ccc 122) before the lower vowel (U+0EB9, ccc 118):
    # looks the same on screen, differs byte for byte, and NFC puts the vowel first.
    typed = "\u0e9b\u0ec8\u0eb9 \u0eaa\u0ebb\u0ea1"
    nfc = unicodedata.normalize("NFC", typed)
    assert typed != nfc
    decomposed = unicodedata.normalize("NFD", BASE["name_local"])
    records, _ = parse(
        row(name_local=typed),
        row(employee_id="LA-MOHA-000201", name_local=decomposed),
    )
    assert records[0].name_local == nfc == "\u0e9b\u0eb9\u0ec8 \u0eaa\u0ebb\u0ea1"
    assert records[1].name_local == BASE["name_local"]
    assert all(unicodedata.is_normalized("NFC", r.name_local) for r in records)


def test_nfd_latin_name_becomes_nfc() -> None:
    records, _ = parse(row(name_latin=unicodedata.normalize("NFD", "Nguyễn Thị Ánh")))
    assert records[0].name_latin == "Nguyễn Thị Ánh"
    assert len(records[0].name_latin) == 14


def test_no_case_folding_or_compatibility_mapping() -> None:
    records, _ = parse(row(name_latin="de la CRUZ", name_local="ຄຳ ໜູ"))
    assert records[0].name_latin == "de la CRUZ"
    assert records[0].name_local == "ຄຳ ໜູ"  # U+0EB3 and U+0EDC survive (NFKC would split them)


# --- rejects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column",
    [
        "name_local",
        "name_latin",
        "date_of_birth",
        "ministry",
        "category",
        "status",
        "status_date",
    ],
)
def test_missing_required(column: str) -> None:
    assert reject_of(**{column: ""}).reason == f"missing {column}"


def test_missing_employee_id() -> None:
    rej = reject_of(employee_id="  ")
    assert (rej.employee_id, rej.reason) == (None, "missing employee_id")


@pytest.mark.parametrize(
    "employee_id",
    [
        "la-moha-000101",
        "LA-MOHA-101",
        "LAO-MOHA-000101",
        "LA_MOHA_000101",
        "LA-MOHA-000101-1",
        "LA--000101",
        "LA-MOHA-００0101",
        "LA-MOHA-໐໐໐101",
        "LA-ABCDEFGHIJKLM-0001",
    ],
)
def test_bad_employee_id(employee_id: str) -> None:
    rej = reject_of(employee_id=employee_id)
    assert rej.employee_id is None
    assert rej.reason == "employee_id does not match the pattern AA-AGENCY-0000"


@pytest.mark.parametrize("sex", ["f", "Female", "U", "MF"])
def test_bad_sex(sex: str) -> None:
    assert reject_of(sex=sex).reason == "sex must be F, M, X or empty"


@pytest.mark.parametrize("category", ["contract", "Civil_Servant", "civil servant"])
def test_bad_category(category: str) -> None:
    assert reject_of(category=category).reason == (
        "category must be one of civil_servant, contract_official, contract_teacher, temporary"
    )


@pytest.mark.parametrize("status", ["Active", "on_leave", "ACTIVE"])
def test_bad_status(status: str) -> None:
    assert reject_of(status=status).reason == (
        "status must be one of active, suspended, retired, dismissed, deceased, contract_ended"
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("17/05/1980", "date_of_birth is not a YYYY-MM-DD date"),
        ("1980-5-17", "date_of_birth is not a YYYY-MM-DD date"),
        ("19800517", "date_of_birth is not a YYYY-MM-DD date"),
        ("1980-W20-1", "date_of_birth is not a YYYY-MM-DD date"),
        ("໑໙໘໐-05-17", "date_of_birth is not a YYYY-MM-DD date"),
        ("1980-02-30", "date_of_birth is not a valid date"),
        ("1980-13-01", "date_of_birth is not a valid date"),
    ],
)
def test_bad_date(value: str, reason: str) -> None:
    assert reject_of(date_of_birth=value).reason == reason


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"date_of_birth": "2026-11-24"}, "date_of_birth is in the future"),
        ({"status_date": "2026-12-01"}, "status_date is in the future"),
        ({"hire_date": "2027-01-01"}, "hire_date is in the future"),
        ({"date_of_birth": "1899-12-31"}, "date_of_birth before 1900"),
        ({"date_of_birth": "2005-10-01"}, "status_date not after date_of_birth"),
        (
            {"date_of_birth": "1990-01-01", "hire_date": "1989-06-01", "status_date": "2000-01-01"},
            "hire_date not after date_of_birth",
        ),
        ({"date_of_birth": "1991-10-02"}, "hire_date before age 15"),
        ({"status_date": "2005-09-30"}, "status_date before hire_date"),
    ],
)
def test_implausible_dates(overrides: dict[str, str], reason: str) -> None:
    assert reject_of(**overrides).reason == reason


def test_dates_on_the_edges_are_accepted() -> None:
    records, rejects = parse(
        row(date_of_birth="1990-10-01", hire_date="2005-10-01", status_date=TODAY.isoformat()),
        row(employee_id="LA-MOHA-000201", date_of_birth="1984-02-29", hire_date="1999-02-28"),
    )
    assert rejects == [] and len(records) == 2


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
@pytest.mark.parametrize("column", ["name_local", "name_latin", "unit", "grade"])
def test_formula_like_text(start: str, column: str) -> None:
    rej = reject_of(**{column: start + 'HYPERLINK("http://x")'})
    assert rej.reason == f"formula-like text in column {column}"
    assert rej.employee_id == BASE["employee_id"]


def test_formula_behind_spaces() -> None:
    assert reject_of(position="  =1+1").reason == "formula-like text in column position"


def test_formula_sign_inside_text_is_fine() -> None:
    records, _ = parse(row(position="Officer - Grade A", name_latin="A+B"))
    assert records[0].position == "Officer - Grade A"


@pytest.mark.parametrize("text", ["Bounmy\x07", "Boun\x00my", "Boun\nmy", "Boun\u0085my"])
def test_control_characters(text: str) -> None:
    assert reject_of(name_latin=text).reason == "control character in column name_latin"


@pytest.mark.parametrize("char", ["\u200e", "\u200f", "\u061c"])
def test_bidi_marks_are_refused_like_the_overrides(char: str) -> None:
    reason = reject_of(name_local=f"ສົມ{char}ພອນ").reason
    assert reason == "bidirectional control character in column name_local"


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\u200b", "U+200B"),  # zero width space: the Khmer keyboard's space bar types it
        ("\u2060", "U+2060"),  # word joiner
        ("\ufeff", "U+FEFF"),  # a byte-order mark inside a field
        ("\u00ad", "U+00AD"),  # soft hyphen
        ("\u17b4", "U+17B4"),  # Khmer inherent vowels: invisible, deprecated (Mn, not Cf)
        ("\u17b5", "U+17B5"),
        ("\u180e", "U+180E"),
        ("\u034f", "U+034F"),  # combining grapheme joiner (default-ignorable)
        ("\u3164", "U+3164"),  # Hangul filler: a letter that draws nothing
        ("\ufe0f", "U+FE0F"),  # variation selector
        ("\U000e0041", "U+E0041"),  # tag character
        ("\u200d", "U+200D"),  # a joiner after a Lao letter (Lao has no virama)
    ],
)
def test_invisible_characters_are_refused_and_named_by_code_point(char: str, shown: str) -> None:
    rej = reject_of(name_local=f"ສົມ{char}ພອນ")
    assert rej.reason == f"invisible character {shown} in column name_local"


def test_private_use_characters_are_refused() -> None:
    rej = reject_of(name_latin="Boun\ue000my")
    assert rej.reason == "private-use character U+E000 in column name_latin"


@pytest.mark.parametrize(
    "column",
    [c for c in COLUMNS if c != "employee_id"],  # the id has its own pattern
)
def test_every_column_refuses_an_invisible_character(column: str) -> None:
    value = BASE[column]
    rej = reject_of(**{column: value[:2] + "\u200b" + value[2:]})
    assert rej.reason == f"invisible character U+200B in column {column}"
    assert rej.employee_id == BASE["employee_id"]


def test_joiners_after_a_virama_are_kept() -> None:
    """RFC 5892's CONTEXTJ rule: ZWNJ/ZWJ only right after a virama (combining class 9), where
    they choose a conjunct's shape (Khmer coeng U+17D2, Devanagari U+094D); nowhere else."""
    khmer = "ក\u17d2\u200cក"
    records, rejects = parse(row(name_local=khmer, position_local="प्\u200dर"))
    assert rejects == [] and records[0].name_local == khmer
    assert reject_of(name_latin="\u200cBounmy").reason == (
        "invisible character U+200C in column name_latin"
    )


def test_every_format_control_and_private_use_code_point_is_refused() -> None:
    """The class rule, against this Python's Unicode database: Cc, Cf, Co, Cs and the
    default-ignorable code points are all refused (joiners only outside a virama context)."""
    missed = []
    for cp in range(0x110000):
        char = chr(cp)
        refused = unwanted_character("a" + char + "a") is not None
        if unicodedata.category(char) in {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"} and not refused:
            missed.append(f"U+{cp:04X}")
    assert missed == []
    for ok in ["ສົມພອນ", "ព្រុំ សុខា", "Prum Sokha", "Ngô Bảo Châu", "ក\u17d2\u200dក"]:
        assert unwanted_character(ok) is None, ok


def test_optional_columns_office_and_local_script_fields() -> None:
    records, rejects = parse(row())
    assert rejects == []
    assert (records[0].office, records[0].ministry_local, records[0].position_local) == (
        "Vientiane",
        "ກະຊວງພາຍໃນ",
        "ພະນັກງານ",
    )
    # An export without them (the 13 columns of before) imports as it always did.
    assert parse_hr_csv(SAMPLE, today=TODAY).records[0].office == ""
    header = ",".join(c for c in COLUMNS if c not in OPTIONAL_COLUMNS)
    line = ",".join(BASE[c] for c in COLUMNS if c not in OPTIONAL_COLUMNS)
    result = parse_hr_csv(f"{header}\n{line}\n".encode(), today=TODAY)
    assert result.rejects == [] and result.records[0].office == ""
    # One of them alone is fine too; an unknown column still is not.
    result = parse_hr_csv(f"{header},office\n{line},Savannakhet\n".encode(), today=TODAY)
    assert result.records[0].office == "Savannakhet"
    with pytest.raises(HrFileError, match="unknown columns: 'province'"):
        parse_hr_csv(f"{header},province\n{line},X\n".encode(), today=TODAY)


@pytest.mark.parametrize("office", ["*", "Vien/tiane", "ວຽງຈັນ", ".Vientiane", "Vientiane-*"])
def test_office_has_the_operators_format(office: str) -> None:
    rej = reject_of(office=office)
    assert rej.reason.startswith("office must be") and office not in rej.reason
    assert reject_of(office="V" * 65).reason == "office longer than 64 characters"


def test_local_script_fields_have_the_columns_limits() -> None:
    assert reject_of(ministry_local="ກ" * 256).reason == (
        "ministry_local longer than 255 characters"
    )


def test_too_long() -> None:
    assert reject_of(name_latin="A" * 256).reason == "name_latin longer than 255 characters"
    assert reject_of(grade="G" * 33).reason == "grade longer than 32 characters"


@pytest.mark.parametrize("count", [1, len(COLUMNS) - 1, len(COLUMNS) + 1])
def test_wrong_number_of_fields(count: int) -> None:
    fields = ([BASE[c] for c in COLUMNS] + ["extra"])[:count]
    _, rejects = parse(",".join(fields))
    assert rejects[0].reason == f"expected {len(COLUMNS)} fields, got {count}"  # as the header
    assert rejects[0].employee_id == BASE["employee_id"]


def test_duplicate_employee_id_rejects_the_later_row() -> None:
    records, rejects = parse(
        row(),
        row(employee_id="LA-MOHA-000201"),
        row(name_latin="Someone Else"),
    )
    assert [r.employee_id for r in records] == ["LA-MOHA-000200", "LA-MOHA-000201"]
    assert records[0].name_latin == "Bounmy Sihalath"
    assert rejects == [RowReject(4, "LA-MOHA-000200", "duplicate employee_id (first on line 2)")]


def test_duplicate_of_a_rejected_row_is_still_a_duplicate() -> None:
    records, rejects = parse(row(sex="?"), row())
    assert records == []
    assert [r.reason for r in rejects] == [
        "sex must be F, M, X or empty",
        "duplicate employee_id (first on line 2)",
    ]


def test_reasons_never_echo_personal_data() -> None:
    secret = {
        "name_local": "ລັບສຸດຍອດ",
        "name_latin": "Topsecret Person",
        "ministry": "Ministry of Secrets",
        "unit": "Hidden Unit",
        "position": "Spy",
    }
    problems = [
        {"sex": "Q"},
        {"category": "Topsecret"},
        {"status": "Topsecret"},
        {"date_of_birth": "Topsecret"},
        {"name_latin": "=Topsecret Person"},
        {"unit": "Hidden\x01Unit"},
        {"name_local": "ລັບສຸດຍອດ" * 40},
    ]
    for i, problem in enumerate(problems):
        rej = reject_of(**{**secret, **problem, "employee_id": f"LA-MOHA-{i:06d}"})
        for value in {**secret, **problem}.values():
            assert value[:6] not in rej.reason, (problem, rej.reason)
    shifted = reject_of(employee_id="Topsecret Person")
    assert shifted.employee_id is None and "Topsecret" not in shifted.reason


# --- line numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_with_an_embedded_newline(newline: str) -> None:
    records, rejects = parse(
        row(employee_id="LA-MOHA-000301"),  # line 2
        row(employee_id="LA-MOHA-000302", unit="Department of\nPersonnel"),  # lines 3-4
        row(employee_id="LA-MOHA-000303", sex="?"),  # line 5
        "",  # line 6
        row(employee_id="LA-MOHA-000304", status="?"),  # line 7
        row(employee_id="LA-MOHA-000305"),  # line 8
        newline=newline,
    )
    assert [r.employee_id for r in records] == ["LA-MOHA-000301", "LA-MOHA-000305"]
    assert [(r.line, r.employee_id) for r in rejects] == [
        (3, "LA-MOHA-000302"),
        (5, "LA-MOHA-000303"),
        (7, "LA-MOHA-000304"),
    ]
    assert rejects[0].reason == "control character in column unit"


def test_line_numbers_in_the_sample_with_a_bad_row_appended() -> None:
    old_row = ",".join({**BASE, "sex": "?"}[c] for c in COLUMNS if c not in OPTIONAL_COLUMNS)
    data = SAMPLE + old_row.encode("utf-8") + b"\n"  # the sample has the 13 columns only
    result = parse_hr_csv(data, today=TODAY)
    assert [(r.line, r.reason) for r in result.rejects] == [(14, "sex must be F, M, X or empty")]


# --- file-level errors --------------------------------------------------------------------


def test_latin1_file() -> None:
    latin = row(
        name_local="José Müller", name_latin="Jose Muller", ministry_local="", position_local=""
    )
    text = HEADER + "\n" + latin + "\n"
    data = text.encode("latin-1")
    position = data.index("é".encode("latin-1"))
    with pytest.raises(HrFileError, match=f"not UTF-8 at byte {position}"):
        parse_hr_csv(data, today=TODAY)


def test_non_utf8_position_counts_the_bom() -> None:
    data = b"\xef\xbb\xbf" + HEADER.encode() + b"\n\xff"
    with pytest.raises(HrFileError, match=f"not UTF-8 at byte {3 + len(HEADER) + 1}"):
        parse_hr_csv(data, today=TODAY)


def test_utf16_file() -> None:
    with pytest.raises(HrFileError, match="not UTF-8"):
        parse_hr_csv((HEADER + "\n").encode("utf-16"), today=TODAY)


def test_missing_and_unknown_columns_are_named() -> None:
    header = HEADER.replace("grade,", "").replace("hire_date", "hire_dt")
    with pytest.raises(HrFileError) as info:
        parse_hr_csv((header + "\n").encode(), today=TODAY)
    assert str(info.value) == "missing columns: grade, hire_date; unknown columns: 'hire_dt'"


def test_repeated_column() -> None:
    with pytest.raises(HrFileError, match="repeated columns: 'sex'"):
        parse_hr_csv((HEADER + ",sex\n").encode(), today=TODAY)


def test_header_names_are_stripped() -> None:
    header = " , ".join(COLUMNS)
    result = parse_hr_csv((header + "\n" + row() + "\n").encode(), today=TODAY)
    assert len(result.records) == 1


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", b",,,\n"])
def test_empty_file(data: bytes) -> None:
    with pytest.raises(HrFileError, match="empty file"):
        parse_hr_csv(data, today=TODAY)


def test_broken_quoting() -> None:
    with pytest.raises(HrFileError, match="malformed CSV at line 3"):
        parse(row(), row().replace("Department", '"Department'))  # the quote never closes
    with pytest.raises(HrFileError, match="malformed CSV at line 2"):
        parse(row().replace("K3", '"K"3'))


# --- records ------------------------------------------------------------------------------


def test_content_hash_is_stable_and_sensitive() -> None:
    records = parse_hr_csv(SAMPLE, today=TODAY).records
    # Pinned: a change here makes every stored row look changed on the next import.
    assert records[0].content_hash() == (
        "b96db41884855a763aa54a6a0b5776c801ac550baa20c33abd14549e36fe0ff2"
    )
    assert len({r.content_hash() for r in records}) == 12
    first = dataclasses.replace(
        records[0],
        office="Vientiane",
        ministry_local="ກະຊວງ",
        position_local="ຮອງ",
        contract_end=date(2027, 6, 30),
        national_id="123456789",
    )
    for f in dataclasses.fields(HrRecord):
        value = getattr(first, f.name)
        if isinstance(value, date):
            changed = dataclasses.replace(first, **{f.name: date(2000, 1, 1)})  # type: ignore[arg-type]
        elif f.name == "category":
            changed = dataclasses.replace(first, category=Category.TEMPORARY)
        elif f.name == "status":
            changed = dataclasses.replace(first, status=EmploymentStatus.RETIRED)
        else:
            changed = dataclasses.replace(first, **{f.name: value + "x"})
        assert changed.content_hash() != first.content_hash(), f.name
    left = dataclasses.replace(first, name_local="ab", name_latin="c")
    right = dataclasses.replace(first, name_local="a", name_latin="bc")
    assert left.content_hash() != right.content_hash()
    # Shifting text between the new fields is no collision either, nor is adding an office.
    left = dataclasses.replace(first, ministry_local="ab", position_local="c")
    right = dataclasses.replace(first, ministry_local="a", position_local="bc")
    assert left.content_hash() != right.content_hash()
    assert dataclasses.replace(records[0], office="X").content_hash() != (records[0].content_hash())
    # A record without a contract end or national id keeps its hash: re-importing an unchanged
    # export after this version changes nothing; either one of them changes it.
    with_office = dataclasses.replace(records[0], office="X")
    for extra in ({"contract_end": date(2027, 1, 1)}, {"national_id": "A1234"}):
        assert dataclasses.replace(with_office, **extra).content_hash() != (
            with_office.content_hash()
        )


def test_records_are_frozen() -> None:
    record = parse_hr_csv(SAMPLE, today=TODAY).records[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = EmploymentStatus.RETIRED  # type: ignore[misc]


# --- contract ends and national ids (issue 18) -----------------------------------------------


def test_contract_staff_need_a_contract_end_where_the_column_exists() -> None:
    for category in ("contract_official", "contract_teacher", "temporary"):
        assert reject_of(category=category).reason == (
            f"missing contract_end (required for category {category})"
        )
        records, rejects = parse(row(category=category, contract_end="2027-06-30"))
        assert rejects == [] and records[0].contract_end == date(2027, 6, 30)
    assert reject_of(contract_end="2027-06-30").reason == (
        "contract_end given for category civil_servant, which has no contract"
    )


def test_an_export_without_the_column_still_imports_its_contract_staff() -> None:
    old_columns = [c for c in COLUMNS if c not in {"contract_end", "national_id"}]
    values = {**BASE, "category": "contract_teacher"}
    data = ",".join(old_columns) + "\n" + ",".join(values[c] for c in old_columns) + "\n"
    result = parse_hr_csv(data.encode("utf-8"), today=TODAY)
    assert result.rejects == []
    assert result.records[0].contract_end is None and result.records[0].national_id == ""


@pytest.mark.parametrize(
    ("contract_end", "reason"),
    [
        ("2027-13-01", "contract_end is not a valid date"),
        ("30/06/2027", "contract_end is not a YYYY-MM-DD date"),
        ("2036-11-24", "contract_end more than 10 years ahead"),
        ("2005-09-30", "contract_end before hire_date"),
    ],
)
def test_contract_end_rules(contract_end: str, reason: str) -> None:
    rejected = reject_of(category="temporary", contract_end=contract_end)
    assert rejected.reason == reason
    assert contract_end not in rejected.reason


def test_a_contract_may_end_in_the_past_or_ten_years_ahead() -> None:
    for end in ("2020-01-31", "2036-11-23"):
        records, rejects = parse(row(category="temporary", contract_end=end))
        assert rejects == [] and records[0].contract_end == date.fromisoformat(end)


@pytest.mark.parametrize(
    ("written", "stored"),
    [("123456789", "123456789"), ("1234 5678-9", "123456789"), ("ab.12.cd", "AB12CD"), ("", "")],
)
def test_national_ids_are_normalised(written: str, stored: str) -> None:
    records, rejects = parse(row(national_id=written))
    assert rejects == [] and records[0].national_id == stored


@pytest.mark.parametrize("written", ["123", "ສອງ12345", "12/34/56", "1" * 33, "12_345"])
def test_a_malformed_national_id_is_refused_without_echoing_it(written: str) -> None:
    rejected = reject_of(national_id=written)
    assert rejected.reason.startswith("national_id must be 4-32 letters and digits")
    assert written not in rejected.reason
