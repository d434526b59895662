"""The `data.json` member: every record by store and collection, copied from the parts' bytes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from requests.engine.package.disk import Opener
from requests.engine.package.encoding import encode_record
from requests.engine.package.members import MemberWriter
from requests.engine.package.parts import PartSummary, read_lines


def write_data_json(
    out: MemberWriter, parts: Sequence[PartSummary], meta: Mapping[str, Any], open_file: Opener
) -> None:
    head = encode_record(dict(meta))
    out.write_bytes(head[:-1].encode() + (b',"stores":{' if meta else b'"stores":{'))
    for s_index, part in enumerate(parts):
        if s_index:
            out.write_bytes(b",")
        out.write_bytes(b"\n" + encode_record(part.store).encode() + b":{")
        with open_file(part.path) as source:
            source.readline()  # the header
            for c_index, collection in enumerate(part.collections):
                prefix = b"," if c_index else b""
                out.write_bytes(prefix + b"\n" + encode_record(collection.name).encode() + b":[")
                first = True
                for lines in read_lines(source, collection.count, part.store):
                    # A record is one line and JSON text never holds a raw newline, so turning
                    # the newlines into commas joins the records without decoding them.
                    block = b"".join(lines)[:-1].replace(b"\n", b",\n")
                    out.write_bytes((b"\n" if first else b",\n") + block)
                    first = False
                out.write_bytes(b"\n]")
        out.write_bytes(b"}")
    out.write_bytes(b"\n}}\n")
