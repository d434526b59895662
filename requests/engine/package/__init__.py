"""Access packages: the person's records streamed to part files, then to one ZIP (no Django here).

Two steps, so each store's job can run on its own worker and the package is built once at the end:

1. `PartWriter` takes one store's records, in any order, and leaves a part file that appears
   whole or not at all (written under a temporary name, flushed to disk, then renamed over any
   earlier part of the same store). Its first line is a header naming each collection, its record
   count and the union of its field names; then come the records, one JSON document per line,
   grouped by collection in the header's order:

       {"format": "dsr-part/1", "store": "shop", "collections": [
           {"name": "customer", "count": 1, "fields": ["id", "email"]}, ...], "files": [...]}
       {"id": 12, "email": "ada@example.com"}
       ...

   Files a files store holds for the person (`attach`) are copied next to the part, in a folder
   the header names, so a second run never mixes its files with an earlier run's.

2. `write_package` streams the parts into a ZIP (DEFLATE), one member at a time:

   - `data.json`: every record, by store and collection;
   - `<store>/<collection>.csv`: one CSV per collection (UTF-8 with a byte order mark so
     spreadsheets read accents right; the union of the field names as columns; nested values as
     JSON text; text that a spreadsheet would run as a formula is prefixed with `'`);
   - `<store>/<collection>/files/<path>`: the files themselves, when a store holds files;
   - `index.html`: the readable report, rendered by the caller;
   - `manifest.json`: the size and SHA-256 of every other member.

Parts may be read from anywhere (another machine's files through a storage): `read_part` and
`write_package` take an `open_file` that opens a part's or a file's name as a binary stream; by
default it is a path on this machine's disk.

Memory stays flat whatever the number of records: records are only ever held a batch at a time,
and `data.json` is copied from the part files' bytes without decoding them.

Values that JSON has no type for are written as text: dates and times in ISO 8601, decimals
exactly as the store holds them (`"12.50"`), UUIDs as text, and bytes as `{"base64": "..."}`.

Modules: `parts` (PartWriter, read_part: one store's part), `encoding` (records as JSON text),
`members` (a ZIP member being written; unique, safe member names), `data_json` (the data.json
member), `csv_members` (one collection's CSV), `archive` (write_package, verify_package: the ZIP
and its manifest), `disk` (what they share: PackageError, opening a part by name, the chunk size).
"""

from requests.engine.package.archive import (
    COMPRESS_LEVEL,
    PACKAGE_FORMAT,
    ZIP64_ABOVE,
    PackageResult,
    verify_package,
    write_package,
)
from requests.engine.package.disk import CHUNK, Opener, PackageError, open_local
from requests.engine.package.encoding import encode_record
from requests.engine.package.members import Member, csv_member_names, safe_member_name
from requests.engine.package.parts import (
    COPY_BATCH,
    PART_FORMAT,
    PART_SUFFIX,
    CollectionPart,
    PartFile,
    PartSummary,
    PartWriter,
    read_part,
)

__all__ = [
    "CHUNK",
    "COMPRESS_LEVEL",
    "COPY_BATCH",
    "PACKAGE_FORMAT",
    "PART_FORMAT",
    "PART_SUFFIX",
    "ZIP64_ABOVE",
    "CollectionPart",
    "Member",
    "Opener",
    "PackageError",
    "PackageResult",
    "PartFile",
    "PartSummary",
    "PartWriter",
    "csv_member_names",
    "encode_record",
    "open_local",
    "read_part",
    "safe_member_name",
    "verify_package",
    "write_package",
]
