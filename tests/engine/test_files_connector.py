"""The files connector on a real folder: files found by the identifier in their path."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

import pytest

from requests.connectors.files import READ_CHUNK
from requests.connectors.registry import connector_for
from requests.engine.store import PermanentStoreError
from requests.engine.storemap import StoreMap


def make_map(**collections) -> StoreMap:
    """Collections given as name=(location, options); each placeholder is a field."""
    spec = {}
    for name, (location, options) in collections.items():
        fields = {f: {} for f in ("customer_id", "email") if "{" + f + "}" in location}
        spec[name] = {"location": location, "key": ["path"], "fields": fields, "options": options}
    return StoreMap.model_validate({"collections": spec})


def write(root, relative, content=b"data"):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def connect(root, store_map, *, allowed=None, **kwargs):
    """A connector on `root`, allowed to live in its parent folder (the test's own) by default."""
    options = {"allowed_roots": [str(allowed or root.parent)], **kwargs.pop("options", {})}
    return connector_for(
        "files", root.as_uri(), store_map, name="uploads", options=options, **kwargs
    )


def paths(connector, store_map, collection, field, values):
    return sorted(
        r["path"] for r in connector.find(store_map.collections[collection], field, values)
    )


def test_finds_every_file_in_a_customers_folder_and_nothing_of_another_customer(root):
    write(root, "12/contract.pdf", b"x" * 10)
    write(root, "12/scans/id.png")
    write(root, "123/contract.pdf")
    write(root, "1/contract.pdf")
    store_map = make_map(uploads=("{customer_id}/", {}))

    with connect(root, store_map) as connector:
        records = list(connector.find(store_map.collections["uploads"], "customer_id", [12]))

    by_path = {r["path"]: r for r in records}
    assert sorted(by_path) == ["12/contract.pdf", "12/scans/id.png"]
    assert by_path["12/contract.pdf"]["size"] == 10
    assert by_path["12/contract.pdf"]["customer_id"] == "12"
    assert datetime.fromisoformat(by_path["12/contract.pdf"]["modified"]).tzinfo is not None
    assert "sha256" not in by_path["12/contract.pdf"]


def test_values_that_could_leave_the_root_or_reach_another_folder_find_nothing(root, tmp_path):
    write(tmp_path, "outside/secret.txt")
    write(root, "123/contract.pdf")
    write(root, "12/contract.pdf")
    store_map = make_map(uploads=("{customer_id}/", {}))
    hostile = ["../outside", "..", ".", "", "12/../123", "/etc", "123/", "12\\..\\123", "12\x00"]

    with connect(root, store_map) as connector:
        assert paths(connector, store_map, "uploads", "customer_id", hostile) == []


def test_file_names_with_a_wildcard_match_the_customer_and_glob_characters_only_themselves(root):
    for name in ["12-2024.csv", "12-2025.csv", "123-2024.csv", "1*-2024.csv", "12-2024.txt"]:
        write(root, f"exports/{name}")
    store_map = make_map(exports=("exports/{customer_id}-*.csv", {}))

    with connect(root, store_map) as connector:
        assert paths(connector, store_map, "exports", "customer_id", ["12"]) == [
            "exports/12-2024.csv",
            "exports/12-2025.csv",
        ]
        assert paths(connector, store_map, "exports", "customer_id", ["1*"]) == [
            "exports/1*-2024.csv"
        ]
        # `12-2024` holds the separator: it would match customer 12's file, so it is not searched.
        assert paths(connector, store_map, "exports", "customer_id", ["12-2024"]) == []


def test_file_names_holding_an_email_are_found_exactly_or_ignoring_case_when_asked(root):
    write(root, "avatars/Ada@Example.com.png")
    write(root, "avatars/bob@example.com.png")
    exact = make_map(avatars=("avatars/{email}.png", {}))
    relaxed = make_map(avatars=("avatars/{email}.png", {"ignore_case": True}))

    with connect(root, exact) as connector:
        assert paths(connector, exact, "avatars", "email", ["ada@example.com"]) == []
        assert paths(connector, exact, "avatars", "email", ["Ada@Example.com"]) == [
            "avatars/Ada@Example.com.png"
        ]
    with connect(root, relaxed) as connector:
        assert paths(connector, relaxed, "avatars", "email", ["ada@example.com"]) == [
            "avatars/Ada@Example.com.png"
        ]


def test_email_identities_match_file_names_in_any_case_unless_the_field_says_exact(root):
    write(root, "avatars/Ada@Example.com.png")

    def avatars(**field):
        return StoreMap.model_validate(
            {
                "collections": {
                    "avatars": {
                        "location": "avatars/{email}.png",
                        "fields": {"email": {"identity": "email", **field}},
                    }
                }
            }
        )

    auto, exact = avatars(), avatars(match="exact")
    with connect(root, auto) as connector:
        found = connector.find_identity(
            auto.collections["avatars"], "email", "email", ["ada@example.com"]
        )
        assert [r["path"] for r in found] == ["avatars/Ada@Example.com.png"]
    with connect(root, exact) as connector:
        found = connector.find_identity(
            exact.collections["avatars"], "email", "email", ["ada@example.com"]
        )
        assert list(found) == []


def test_checksums_are_computed_in_chunks_when_the_map_asks_for_them(root):
    content = os.urandom(READ_CHUNK * 2 + 123)
    write(root, "12/big.bin", content)
    store_map = make_map(uploads=("{customer_id}/", {"checksum": True}))

    with connect(root, store_map) as connector:
        (record,) = connector.find(store_map.collections["uploads"], "customer_id", ["12"])

    assert record["sha256"] == hashlib.sha256(content).hexdigest()
    assert record["size"] == len(content)


def test_symbolic_links_are_neither_followed_nor_reported(root, tmp_path):
    secret = write(tmp_path, "outside/secret.txt")
    write(root, "12/own.txt")
    os.symlink(secret, root / "12" / "link.txt")
    os.symlink(tmp_path / "outside", root / "13")

    store_map = make_map(uploads=("{customer_id}/", {}))
    with connect(root, store_map) as connector:
        assert paths(connector, store_map, "uploads", "customer_id", ["12"]) == ["12/own.txt"]
        assert paths(connector, store_map, "uploads", "customer_id", ["13"]) == []
        with pytest.raises(PermanentStoreError, match="link"):
            connector.open_file(store_map.collections["uploads"], "13/secret.txt")


def test_open_file_streams_a_found_file_and_refuses_paths_outside_the_collection(root, tmp_path):
    write(root, "12/contract.pdf", b"%PDF contract")
    write(tmp_path, "outside/secret.txt")
    write(root, "avatars/ada@example.com.png")
    store_map = make_map(uploads=("{customer_id}/", {}))
    uploads = store_map.collections["uploads"]

    with connect(root, store_map) as connector:
        (record,) = connector.find(uploads, "customer_id", ["12"])
        with connector.open_file(uploads, record["path"]) as handle:
            assert handle.read(5) == b"%PDF "
            assert handle.read() == b"contract"
        for outside in ["../outside/secret.txt", "/etc/passwd", "12", "12/../../outside/x"]:
            with pytest.raises(PermanentStoreError):
                connector.open_file(uploads, outside)


def test_erase_deletes_the_files_and_the_emptied_person_folder_but_keeps_shared_folders(root):
    write(root, "12/contract.pdf")
    write(root, "12/scans/id.png")
    write(root, "123/contract.pdf")
    write(root, "avatars/ada@example.com.png")
    write(root, "avatars/bob@example.com.png")
    store_map = make_map(uploads=("{customer_id}/", {}), avatars=("avatars/{email}.png", {}))
    uploads, avatars = store_map.collections["uploads"], store_map.collections["avatars"]

    with connect(root, store_map) as connector:
        found = [r["path"] for r in connector.find(uploads, "customer_id", ["12"])]
        assert connector.erase(uploads, found) == 2
        assert connector.erase(uploads, found) == 0  # a retried erasure is harmless
        with pytest.raises(PermanentStoreError):
            connector.erase(uploads, ["../uploads/123/contract.pdf"])
        for email in ["ada@example.com", "bob@example.com"]:
            (avatar,) = connector.find(avatars, "email", [email])
            assert connector.erase(avatars, [(avatar["path"],)]) == 1

    assert not (root / "12").exists()
    assert (root / "123" / "contract.pdf").exists()
    assert (root / "avatars").is_dir() and not any((root / "avatars").iterdir())


def test_a_missing_root_fails_the_check_clearly_and_find_is_permanent(tmp_path):
    missing = tmp_path / "not-mounted"
    store_map = make_map(uploads=("{customer_id}/", {}))

    with connect(missing, store_map) as connector:
        result = connector.check()
        with pytest.raises(PermanentStoreError, match="root folder"):
            list(connector.find(store_map.collections["uploads"], "customer_id", ["12"]))

    assert not result.ok
    assert "root folder" in result.message
    assert "No such file" in result.message
    assert str(missing) not in result.message


def test_the_check_names_a_missing_folder_and_a_placeholder_that_is_not_a_field(root):
    write(root, "12/contract.pdf")
    store_map = StoreMap.model_validate(
        {
            "collections": {
                "uploads": {"location": "{customer_id}/", "fields": {"customer_id": {}}},
                "avatars": {"location": "avatars/{email}.png", "fields": {"email": {}}},
                "exports": {"location": "exports/{customer}.csv", "fields": {"customer_id": {}}},
            }
        }
    )

    with connect(root, store_map) as connector:
        result = connector.check()
    (root / "avatars").mkdir()
    (root / "exports").mkdir()
    with connect(root, make_map(uploads=("{customer_id}/", {}))) as connector:
        healthy = connector.check()

    assert not result.ok
    assert "collection avatars: folder avatars/ does not exist" in result.problems
    assert any("{customer} is not a field" in p for p in result.problems)
    assert healthy.ok and "readable" in healthy.message


def test_a_wildcard_right_next_to_a_placeholder_is_refused_as_ambiguous(root):
    store_map = make_map(exports=("exports/{customer_id}*.csv", {}))

    with connect(root, store_map) as connector:
        with pytest.raises(PermanentStoreError, match="separator"):
            list(connector.find(store_map.collections["exports"], "customer_id", ["12"]))
        assert not connector.check().ok
