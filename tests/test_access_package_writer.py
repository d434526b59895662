"""The package writer on its own (no Django): parts that appear whole or not at all, and a ZIP
whose JSON, CSVs and manifest say the same thing, built in flat memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import uuid
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from requests.engine.package import (
    PackageError,
    PartWriter,
    csv_member_names,
    read_part,
    verify_package,
    write_package,
)


def _part(tmp_path, store="shop", records=()):
    with PartWriter(tmp_path / "parts" / f"{store}.jsonl", store=store) as part:
        for collection, data in records:
            part.add(collection, data)
        return part.commit()


def _csv_rows(archive, name):
    text = archive.read(name).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_a_part_groups_records_by_collection_and_names_the_union_of_their_fields(tmp_path):
    summary = _part(
        tmp_path,
        records=[
            ("orders", {"id": 1, "total": 5}),
            ("customers", {"id": 12, "email": "ada@example.com"}),
            ("orders", {"id": 2, "total": 7, "coupon": "SPRING"}),
        ],
    )
    assert summary.counts == {"orders": 2, "customers": 1}
    header = read_part(summary.path)
    assert [(c.name, c.count, c.fields) for c in header.collections] == [
        ("orders", 2, ["id", "total", "coupon"]),
        ("customers", 1, ["id", "email"]),
    ]
    lines = summary.path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines[1:]] == [1, 2, 12]


def test_an_abandoned_part_leaves_nothing_and_keeps_the_earlier_part(tmp_path):
    earlier = _part(tmp_path, records=[("orders", {"id": 1})])
    before = earlier.path.read_bytes()
    with pytest.raises(RuntimeError), PartWriter(earlier.path, store="shop") as part:
        part.add("orders", {"id": 2})
        raise RuntimeError("the worker died half-way")
    assert earlier.path.read_bytes() == before
    assert sorted(p.name for p in earlier.path.parent.iterdir()) == ["shop.jsonl"]


def test_a_second_run_replaces_the_part_and_its_files(tmp_path):
    path = tmp_path / "parts" / "uploads.jsonl"
    with PartWriter(path, store="uploads") as part:
        part.add("files", {"path": "12/old.txt"})
        part.attach("files", "12/old.txt", io.BytesIO(b"old"))
        first = part.commit()
    with PartWriter(path, store="uploads") as part:
        part.add("files", {"path": "12/new.txt"})
        part.attach("files", "12/new.txt", io.BytesIO(b"new"))
        second = part.commit()
    assert read_part(path).files_dir == second.files_dir != first.files_dir
    assert not (path.parent / first.files_dir).exists()
    assert [f.path for f in read_part(path).files] == ["12/new.txt"]


def test_the_package_holds_every_record_in_json_and_csv_and_the_manifest_verifies(tmp_path):
    shop = _part(
        tmp_path,
        "shop",
        [("customers", {"id": 12, "email": "ada@example.com"})]
        + [("orders", {"id": i, "customer_id": 12, "total": Decimal("1.50")}) for i in range(25)],
    )
    crm = _part(tmp_path, "crm", [("notes", {"id": 1, "body": "called, line 1\nline 2"})])
    result = write_package(
        path=tmp_path / "package.zip",
        parts=[crm, shop],
        index_html="<html>report</html>",
        meta={"reference": "abc"},
    )
    assert result.counts == {"crm": {"notes": 1}, "shop": {"customers": 1, "orders": 25}}
    assert result.records == 27
    assert verify_package(result.path) == []
    with zipfile.ZipFile(result.path) as archive:
        assert archive.namelist() == [
            "data.json",
            "crm/notes.csv",
            "shop/customers.csv",
            "shop/orders.csv",
            "index.html",
            "manifest.json",
        ]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
        data = json.loads(archive.read("data.json"))
        assert data["reference"] == "abc"
        assert len(data["stores"]["shop"]["orders"]) == 25
        assert data["stores"]["crm"]["notes"][0]["body"] == "called, line 1\nline 2"
        orders = _csv_rows(archive, "shop/orders.csv")
        assert orders[0] == ["id", "customer_id", "total"]
        assert len(orders) == 26 and orders[1] == ["0", "12", "1.50"]
        assert _csv_rows(archive, "crm/notes.csv")[1] == ["1", "called, line 1\nline 2"]
        manifest = json.loads(archive.read("manifest.json"))
        assert set(manifest["files"]) == set(archive.namelist()) - {"manifest.json"}
    assert result.sha256 and result.size == result.path.stat().st_size


def test_a_changed_member_fails_verification(tmp_path):
    part = _part(tmp_path, records=[("orders", {"id": 1, "total": 5})])
    result = write_package(path=tmp_path / "p.zip", parts=[part], index_html="<html></html>")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(result.path) as source, zipfile.ZipFile(tampered, "w") as out:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "shop/orders.csv":
                content = content.replace(b"5", b"6")
            out.writestr(info, content)
    assert verify_package(tampered) == ["shop/orders.csv does not match its checksum"]


def test_csv_columns_are_the_union_and_nested_values_are_json_text(tmp_path):
    part = _part(
        tmp_path,
        records=[
            ("profiles", {"id": 1, "tags": ["a", "b"], "address": {"city": "Lyon"}}),
            ("profiles", {"id": 2, "newsletter": True, "score": 1.5}),
            ("profiles", {"id": 3, "newsletter": False, "tags": None}),
        ],
    )
    result = write_package(path=tmp_path / "p.zip", parts=[part], index_html="")
    with zipfile.ZipFile(result.path) as archive:
        rows = _csv_rows(archive, "shop/profiles.csv")
    assert rows == [
        ["id", "tags", "address", "newsletter", "score"],
        ["1", '["a","b"]', '{"city":"Lyon"}', "", ""],
        ["2", "", "", "true", "1.5"],
        ["3", "", "", "false", ""],
    ]


def test_text_a_spreadsheet_would_run_is_defused_in_csv_and_exact_in_json(tmp_path):
    part = _part(
        tmp_path,
        records=[
            ("notes", {"id": 1, "body": '=HYPERLINK("http://evil.example","click")'}),
            ("notes", {"id": 2, "body": "-12.50"}),
            ("notes", {"id": 3, "body": "@SUM(A1)"}),
            ("notes", {"id": 4, "body": "plain"}),
        ],
    )
    result = write_package(path=tmp_path / "p.zip", parts=[part], index_html="")
    with zipfile.ZipFile(result.path) as archive:
        bodies = [row[1] for row in _csv_rows(archive, "shop/notes.csv")[1:]]
        data = json.loads(archive.read("data.json"))
    assert bodies == ['\'=HYPERLINK("http://evil.example","click")', "-12.50", "'@SUM(A1)", "plain"]
    assert data["stores"]["shop"]["notes"][0]["body"].startswith("=HYPERLINK")


def test_values_json_has_no_type_for_are_written_as_text(tmp_path):
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    part = _part(
        tmp_path,
        records=[
            (
                "events",
                {
                    "at": datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
                    "on": date(2024, 5, 1),
                    "amount": Decimal("0.10"),
                    "id": uid,
                    "blob": b"\x00\xff",
                    "text": "café ☕",
                },
            )
        ],
    )
    result = write_package(path=tmp_path / "p.zip", parts=[part], index_html="")
    with zipfile.ZipFile(result.path) as archive:
        record = json.loads(archive.read("data.json"))["stores"]["shop"]["events"][0]
        row = _csv_rows(archive, "shop/events.csv")[1]
    assert record == {
        "at": "2024-05-01T10:00:00+00:00",
        "on": "2024-05-01",
        "amount": "0.10",
        "id": str(uid),
        "blob": {"base64": "AP8="},
        "text": "café ☕",
    }
    assert row[:4] == ["2024-05-01T10:00:00+00:00", "2024-05-01", "0.10", str(uid)]
    assert row[5] == "café ☕"


def test_member_names_cannot_leave_their_folder_or_collide(tmp_path):
    part = _part(
        tmp_path,
        records=[("../../etc/passwd", {"id": 1}), ("Orders", {"id": 2}), ("orders", {"id": 3})],
    )
    names = csv_member_names([part])
    assert names == {
        ("shop", "../../etc/passwd"): "shop/_.._etc_passwd.csv",
        ("shop", "Orders"): "shop/Orders.csv",
        ("shop", "orders"): "shop/orders~2.csv",
    }
    result = write_package(path=tmp_path / "p.zip", parts=[part], index_html="")
    with zipfile.ZipFile(result.path) as archive:
        assert set(names.values()) <= set(archive.namelist())
        assert not any(
            name.startswith(("/", "..")) or "/../" in name for name in archive.namelist()
        )


def test_the_persons_files_are_copied_into_the_package(tmp_path):
    with PartWriter(tmp_path / "parts" / "uploads.jsonl", store="uploads") as part:
        part.add("files", {"path": "12/passport.png", "size": 4})
        part.attach("files", "12/passport.png", io.BytesIO(b"\x89PNG"))
        summary = part.commit()
    result = write_package(path=tmp_path / "p.zip", parts=[summary], index_html="")
    assert result.files == 1
    with zipfile.ZipFile(result.path) as archive:
        assert archive.read("uploads/files/files/12/passport.png") == b"\x89PNG"
    assert verify_package(result.path) == []


def test_a_missing_or_damaged_part_is_a_clear_error(tmp_path):
    with pytest.raises(PackageError, match="missing"):
        read_part(tmp_path / "nope.jsonl")
    part = _part(tmp_path, records=[("orders", {"id": i}) for i in range(10)])
    content = part.path.read_bytes()
    part.path.write_bytes(content[:-12])  # a record and a half short
    with pytest.raises(PackageError, match="ends early"):
        write_package(path=tmp_path / "p.zip", parts=[read_part(part.path)], index_html="")
    assert not (tmp_path / "p.zip").exists()
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_memory_stays_flat_as_the_number_of_records_grows(tmp_path):
    def peak_for(count: int) -> int:
        folder = tmp_path / str(count)
        tracemalloc.start()
        with PartWriter(folder / "shop.jsonl", store="shop") as part:
            for i in range(count):
                part.add("orders", {"id": i, "customer_id": 12, "sku": f"SKU-{i}", "qty": 1})
            summary = part.commit()
        write_package(path=folder / "p.zip", parts=[summary], index_html="")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_for(20_000), peak_for(200_000)
    assert large < 2 * small + 5_000_000, (small, large)
    assert large < 30_000_000


def test_parts_and_packages_are_readable_by_the_portals_user_only(tmp_path):
    part = _part(tmp_path, records=[("orders", {"id": 1})])
    result = write_package(path=tmp_path / "out" / "p.zip", parts=[part], index_html="")
    assert part.path.stat().st_mode & 0o077 == 0
    assert result.path.stat().st_mode & 0o077 == 0
    assert part.path.parent.stat().st_mode & 0o077 == 0
