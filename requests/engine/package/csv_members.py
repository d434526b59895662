"""One collection's CSV member: spreadsheet-safe cells, written a batch of records at a time."""

from __future__ import annotations

import csv
import json
import re
from operator import itemgetter
from typing import IO, Any

from requests.engine.package.disk import PackageError
from requests.engine.package.encoding import encode_record
from requests.engine.package.members import MemberWriter
from requests.engine.package.parts import CollectionPart, read_lines

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# In a batch of records as this module encodes them (no spaces), a top-level value that is an
# object, a list, true, false or text starting like a formula begins with one of these. Text that
# merely contains one of them only sends its batch down the slower path.
_NOT_PLAIN = re.compile(rb':(?:[tf\[{]|"(?:[=+\-@]|\\[tr]))')
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _csv_cell(value: Any) -> Any:
    if value is None or value.__class__ in (int, float):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value.__class__ is str:
        if value.startswith(_FORMULA_START) and not _NUMBER.match(value):
            return "'" + value
        return value
    return encode_record(value)


def write_csv(out: MemberWriter, source: IO[bytes], collection: CollectionPart, store: str) -> None:
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    fields = collection.fields
    writer.writerow(fields)
    if len(fields) == 1:
        only = fields[0]

        def row(record):
            return (record[only],)
    else:
        row = itemgetter(*fields)
    for lines in read_lines(source, collection.count, store):
        raw = b"".join(lines)
        try:
            records = json.loads(b"[" + raw[:-1].replace(b"\n", b",") + b"]")
        except ValueError:
            raise PackageError(f"the part for {store} is damaged") from None
        rows = None
        if fields and _NOT_PLAIN.search(raw) is None:
            # Numbers, null and safe text only: the csv module writes them as they are.
            try:
                rows = list(map(row, records))
            except KeyError:  # some records lack a field: fill the gaps below
                rows = None
        if rows is None:
            rows = [[_csv_cell(record.get(name)) for name in fields] for record in records]
        writer.writerows(rows)
        out.flush()
