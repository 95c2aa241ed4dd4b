"""The local grants file (AUTH=on) is read strictly: every way it can be wrong is named, with the
file and the entry, instead of a grant silently ignored or a 500."""

from __future__ import annotations

import json

import pytest

from lib.api.access import FileGrants, GrantsFileError, parse_grants_file

ALICE = "arn:aws:iam::000000000000:user/alice"


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "is not valid JSON (line 1, column 1: Expecting value)"),
    (b'{"grants": [}', "is not valid JSON (line 1, column 13: Expecting value)"),
    (b"\xff\xfe", "is not UTF-8 text"),
    (b"[]", 'is not a JSON object {"grants": [...]}'),
    (b'{"grant": []}', 'is not a JSON object {"grants": [...]}'),
    (b'{"grants": {}}', 'is not a JSON object {"grants": [...]}'),
    (b'{"grants": ["alice"]}', "has grants[0] that is not an object"),
    (b'{"grants": [{"role": "Administrator", "tenants": ["*"]}]}', "has grants[0] without a principal (an IAM ARN)"),
    (b'{"grants": [{"principal": " ", "role": "Administrator", "tenants": ["*"]}]}', "has grants[0] without a principal"),
    (json.dumps({"grants": [{"principal": ALICE, "role": "Supervisor", "tenants": ["*"]},
                            {"principal": ALICE, "tenants": ["*"]}]}).encode(),
     f"has grants[1] ({ALICE}) whose role is null, not Administrator or Supervisor"),
    (json.dumps({"grants": [{"principal": ALICE, "role": "Supervisor", "tenants": "acme/"}]}).encode(),
     f'has grants[0] ({ALICE}) whose tenants are not a list of "<ContactCenterId>/<GroupId>"'),
    (json.dumps({"grants": [{"principal": ALICE, "role": "Supervisor", "tenants": ["acme"]}]}).encode(),
     f'has grants[0] ({ALICE}) whose tenants are not a list'),
    (json.dumps({"grants": [{"principal": ALICE, "role": "Supervisor", "tenants": ["*"]},
                            {"principal": ALICE, "role": "Administrator", "tenants": ["*"]}]}).encode(),
     f"has grants[1] for {ALICE}, which an earlier grant names already"),
    # An assumed-role session is its role: two entries that name the same role are one principal.
    (json.dumps({"grants": [
        {"principal": "arn:aws:iam::111122223333:role/ops", "role": "Supervisor", "tenants": ["*"]},
        {"principal": "arn:aws:sts::111122223333:assumed-role/ops/bob", "role": "Administrator", "tenants": ["*"]},
    ]}).encode(), "has grants[1] for arn:aws:sts::111122223333:assumed-role/ops/bob, which an earlier grant names"),
])
def test_every_malformed_file_is_refused_with_its_reason(tmp_path, content, reason):
    path = tmp_path / "grants.json"
    path.write_bytes(content)
    with pytest.raises(GrantsFileError) as refused:
        FileGrants(str(path)).load()
    assert refused.value.message.startswith(f"the grants file {path} {reason}"), refused.value.message
    assert refused.value.status == 403 and refused.value.exception == "ForbiddenException"


def test_a_missing_file_is_named_with_how_to_write_it(tmp_path):
    with pytest.raises(GrantsFileError) as refused:
        FileGrants(str(tmp_path / "none.json")).get(ALICE)
    assert refused.value.message == (f"the grants file {tmp_path / 'none.json'} does not exist (GRANTS_FILE; "
                                     "write it with scripts/grants.py --file, README: Access)")


def test_a_valid_file_gives_each_principal_its_grant(tmp_path):
    grants = parse_grants_file(json.dumps({"grants": [
        {"principal": ALICE, "role": "Administrator", "tenants": ["acme/", "beta/*"]},
        {"principal": "arn:aws:sts::111122223333:assumed-role/ops/bob", "role": "Supervisor", "tenants": ["*"]},
    ]}).encode(), "grants.json")
    assert set(grants) == {ALICE, "arn:aws:iam::111122223333:role/ops"}
    assert grants[ALICE].role == "Administrator" and grants[ALICE].tenants == frozenset({"acme/", "beta/*"})
    assert parse_grants_file(b'{"grants": []}', "grants.json") == {}


def test_a_broken_edit_keeps_refusing_until_fixed_and_is_never_half_applied(tmp_path):
    path = tmp_path / "grants.json"
    source = FileGrants(str(path))
    path.write_text(json.dumps({"grants": [{"principal": ALICE, "role": "Administrator", "tenants": ["*"]}]}))
    assert source.get(ALICE).role == "Administrator"
    path.write_text('{"grants": [')
    for _ in range(2):
        with pytest.raises(GrantsFileError):
            source.get(ALICE)
    path.write_text(json.dumps({"grants": [{"principal": ALICE, "role": "Supervisor", "tenants": ["*"]}]}))
    assert source.get(ALICE).role == "Supervisor"
