"""A small writer of OLE compound files (MS-CFB, version 3, 512-byte sectors), so that the tests
can build HWP 5.0 documents: olefile only reads them.

Streams under 4096 bytes live in the mini stream (64-byte sectors kept in the root entry's own
stream, chained by the mini FAT), as the format requires; larger ones in regular sectors. Storages
hold their children as a chain of right siblings in the format's name order, which is a valid
(if unbalanced) directory tree.
"""
from __future__ import annotations

import itertools
import struct

SECTOR = 512
FREE, END, FAT_SECTOR, NONE = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
CUTOFF = 4096


def compound_file(streams: dict[str, bytes]) -> bytes:
    """streams: "FileHeader" or "BodyText/Section0" -> bytes (one level of storages)."""
    entries = [{"name": "Root Entry", "type": 5, "children": [], "data": b""}]
    storages: dict[str, int] = {}
    for path, data in streams.items():
        parent = 0
        *folders, leaf = path.split("/")
        for folder in folders:
            if folder not in storages:
                storages[folder] = len(entries)
                entries.append({"name": folder, "type": 1, "children": [], "data": b""})
                entries[parent]["children"].append(storages[folder])
            parent = storages[folder]
        entries.append({"name": leaf, "type": 2, "children": [], "data": data})
        entries[parent]["children"].append(len(entries) - 1)

    sectors: list[bytes] = []
    fat: list[int] = []

    def place(data: bytes) -> int:
        count = max(1, -(-len(data) // SECTOR))
        first = len(sectors)
        for index in range(count):
            sectors.append(data[index * SECTOR:(index + 1) * SECTOR].ljust(SECTOR, b"\0"))
            fat.append(first + index + 1 if index < count - 1 else END)
        return first

    mini = bytearray()
    minifat: list[int] = []
    for entry in entries:
        if entry["type"] != 2:
            entry["start"] = END
        elif len(entry["data"]) >= CUTOFF:
            entry["start"] = place(entry["data"])
        else:
            count = max(1, -(-len(entry["data"]) // 64))
            first = entry["start"] = len(minifat)
            minifat.extend(first + i + 1 if i < count - 1 else END for i in range(count))
            mini += entry["data"].ljust(count * 64, b"\0")
    root = entries[0]
    root["start"], root["data"] = (place(bytes(mini)), bytes(mini)) if mini else (END, b"")
    minifat_start = place(struct.pack(f"<{len(minifat)}I", *minifat)) if minifat else END
    minifat_count = -(-len(minifat) * 4 // SECTOR)
    directory = b"".join(_entry(entry, entries) for entry in entries)
    directory_start = place(directory.ljust(-(-len(directory) // SECTOR) * SECTOR, b"\0"))
    fat_count = 1
    while (len(sectors) + fat_count) * 4 > fat_count * SECTOR:
        fat_count += 1
    fat_start = len(sectors)
    fat.extend([FAT_SECTOR] * fat_count)
    table = struct.pack(f"<{len(fat)}I", *fat).ljust(fat_count * SECTOR, b"\xff")
    sectors.extend(table[i * SECTOR:(i + 1) * SECTOR] for i in range(fat_count))

    difat = [fat_start + i for i in range(fat_count)] + [FREE] * (109 - fat_count)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<IIIIIIIII", 0, fat_count, directory_start, 0, CUTOFF, minifat_start, minifat_count, END, 0)
              + struct.pack("<109I", *difat))
    return header + b"".join(sectors)


def _entry(entry: dict, entries: list[dict]) -> bytes:
    name = entry["name"].encode("utf-16-le") + b"\0\0"
    ordered = sorted(entry["children"], key=lambda i: (len(entries[i]["name"]), entries[i]["name"].upper()))
    child = ordered[0] if ordered else NONE
    for left, right in itertools.pairwise(ordered):
        entries[left]["right"] = right
    return (name.ljust(64, b"\0") + struct.pack("<HBB", len(name), entry["type"], 1)
            + struct.pack("<III", NONE, entry.get("right", NONE), child) + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
            + struct.pack("<IQ", entry["start"], len(entry["data"])))
