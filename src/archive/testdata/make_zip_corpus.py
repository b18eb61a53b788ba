#!/usr/bin/env python3
"""Writes zip_corpus/: the zips the layout reader's corpus test
(src/archive/zip_corpus_test.cc) feeds it, and zip_corpus/expected.tsv, what
it must make of each under the test's limits (10 MB unpacked, 100 entries).

Deterministic: run it again and the same bytes come out. Run from anywhere:
    python3 src/archive/testdata/make_zip_corpus.py

expected.tsv, one file a line, tab-separated:
    file  verdict  code  message
verdict: accept        the reader accepts it and it unpacks;
         refuse        the reader refuses it (code, and a message containing `message`);
         unpack-fails  the reader accepts it, unpacking stops (code, message) and takes back what it wrote;
         any           random damage: either, but never a crash, a stray write or a leftover.
"""
import io
import os
import random
import shutil
import stat
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "zip_corpus")
MAX_BYTES = 10_000_000  # the test's UnpackLimits
MAX_ENTRIES = 100
FIXED_TIME = (2024, 1, 2, 3, 4, 6)

expected = []  # (file, verdict, code, message)


def put(name, data, verdict, code="", message=""):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    expected.append((name, verdict, code, message))


def accept(name, data):
    put(name, data, "accept")


def refuse(name, data, message, code="InvalidInput"):
    put(name, data, "refuse", code, message)


def unpack_fails(name, data, message, code="InvalidInput"):
    put(name, data, "unpack-fails", code, message)


# ---- zips made the ordinary way -------------------------------------------

def pyzip(entries, compression=zipfile.ZIP_DEFLATED, comment=b"", force_zip64=False):
    """entries: (name, data or None for a folder, unix mode or None, made on Unix?)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data, mode, unix in entries:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = compression
            if unix:
                info.create_system = 3
                if mode is None:
                    mode = (stat.S_IFDIR | 0o755) if data is None else (stat.S_IFREG | 0o644)
                info.external_attr = mode << 16
                if data is None:
                    info.external_attr |= 0x10
            else:
                info.create_system = 0
            if force_zip64 and data is not None:
                with z.open(info, "w", force_zip64=True) as f:
                    f.write(data)
            else:
                z.writestr(info, b"" if data is None else data)
        z.comment = comment
    return buf.getvalue()


def f(name, data, mode=None):
    return (name, data, mode, True)


TEXT = b"".join(b"line %d of a regular text file\n" % (i % 17) for i in range(400))


# ---- zips written byte by byte (as zip_test_util.h's StoredZip) -----------

def crc(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def raw_zip(entries, aliases=(), zip64=False, comment=b""):
    """entries: dicts with name, data and optionally descriptor, mode, flags,
    method, comp (bytes as stored), size (declared uncompressed), made_by."""
    out = bytearray()
    central = []
    for e in entries:
        name, data = e["name"], e["data"]
        comp = e.get("comp", data)
        method = e.get("method", 0)
        flags = e.get("flags", 0) | (8 if e.get("descriptor") else 0)
        size = e.get("size", len(data))
        c32 = crc(data)
        offset = len(out)
        desc = e.get("descriptor", False)
        # zip64_sizes: both sizes in ZIP64 extra fields, local and central.
        big = e.get("zip64_sizes", False)
        local_extra = struct.pack("<HHQQ", 1, 16, size, len(comp)) if big else b""
        out += b"PK\3\4" + struct.pack("<HHHHHIIIHH", 20, flags, method, 0, 0x21,
                                       0 if desc else c32,
                                       0xFFFFFFFF if big else 0 if desc else len(comp),
                                       0xFFFFFFFF if big else 0 if desc else size, len(name), len(local_extra))
        out += name + local_extra + comp
        if desc:
            out += b"PK\7\x08" + struct.pack("<III", c32, len(comp), size)
        fields = (struct.pack("<QQ", size, len(comp)) if big else b"") + (struct.pack("<Q", offset) if zip64 else b"")
        extra = struct.pack("<HH", 1, len(fields)) + fields if fields else b""
        mode = e.get("mode", stat.S_IFREG | 0o644)
        c = b"PK\1\2" + struct.pack("<HHHHHHIIIHHHHHII", e.get("made_by", 0x031E), 20, flags, method, 0, 0x21,
                                    c32, 0xFFFFFFFF if big else len(comp), 0xFFFFFFFF if big else size,
                                    len(name), len(extra), 0, 0, 0, mode << 16, 0xFFFFFFFF if zip64 else offset)
        central.append(bytearray(c + name + extra))
    for index, alias in aliases:
        of = central[index]
        old = struct.unpack_from("<H", of, 28)[0]
        c = bytearray(of[:46] + alias + of[46 + old:])
        struct.pack_into("<H", c, 28, len(alias))
        central.append(c)
    cd_offset = len(out)
    for c in central:
        out += c
    cd_size = len(out) - cd_offset
    if zip64:
        record = len(out)
        out += b"PK\6\6" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, len(central), len(central), cd_size, cd_offset)
        out += b"PK\6\7" + struct.pack("<IQI", 0, record, 1)
        out += b"PK\5\6" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment))
    else:
        out += b"PK\5\6" + struct.pack("<HHHHIIH", 0, 0, len(central), len(central), cd_size, cd_offset, len(comment))
    return bytes(out + comment)


def central_headers(data):
    at, found = data.find(b"PK\1\2"), []
    while at >= 0:
        found.append(at)
        at = data.find(b"PK\1\2", at + 1)
    return found


def patch(data, at, fmt, value):
    b = bytearray(data)
    struct.pack_into(fmt, b, at, value)
    return bytes(b)


def deflate(data):
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)

    # ---- valid: accepted and unpacked ----
    deflated = pyzip([f("a.txt", b"hello\n"), f("dir/", None), f("dir/text.txt", TEXT),
                      f("run.sh", b"#!/bin/sh\necho hi\n", stat.S_IFREG | 0o755), f("empty.txt", b"")])
    accept("valid_deflate.zip", deflated)
    stored = pyzip([f("a.txt", b"hello\n"), f("sub/deeper/b.bin", bytes(range(256)) * 4)], zipfile.ZIP_STORED)
    accept("valid_stored.zip", stored)
    accept("valid_empty_archive.zip", pyzip([]))
    commented = pyzip([f("a.txt", b"with a comment")], comment=b"an archive comment, PK\5\6 inside it")
    accept("valid_comment.zip", commented)
    descriptor = raw_zip([{"name": b"one.txt", "data": b"hello", "descriptor": True},
                          {"name": b"two.txt", "data": b"world", "descriptor": True},
                          {"name": b"three.txt", "data": b"!"}])
    accept("valid_descriptor.zip", descriptor)
    zip64 = raw_zip([{"name": b"one.txt", "data": b"hello", "descriptor": True},
                     {"name": b"two.txt", "data": b"world"}], zip64=True)
    accept("valid_zip64.zip", zip64)
    accept("valid_python_zip64_local.zip", pyzip([f("big.txt", TEXT)], force_zip64=True))
    accept("valid_macosx_litter.zip", pyzip([f("__MACOSX/", None), f("__MACOSX/._data.csv", b"fork"),
                                             f("data.csv", b"a,b\n1,2\n")]))
    accept("valid_backslashes_from_windows.zip", pyzip([("dir\\sub\\win.txt", b"win", None, False)]))
    accept("valid_utf8_names.zip", pyzip([f("donn\u00e9es/\u00e9t\u00e9.txt", b"utf-8"), f("\u65e5\u672c.txt", b"jp")]))
    accept("valid_setuid_bits_dropped.zip", pyzip([f("tool", b"#!/bin/sh\n", stat.S_IFREG | 0o6755),
                                                   f("shared/", None, stat.S_IFDIR | 0o1777)]))
    accept("valid_header_time_mismatch.zip", patch(raw_zip([{"name": b"a.txt", "data": b"aaa"},
                                                            {"name": b"b.txt", "data": b"bbb"}]), 10, "<H", 0x22))
    accept("valid_100_entries.zip", pyzip([f("f%03d" % i, b"x") for i in range(MAX_ENTRIES)]))
    accept("valid_long_name_200.zip", pyzip([f("n" * 200, b"a name of 200 bytes")]))
    accept("valid_dot_slash_names.zip", pyzip([f("./", None), f("./a/./b.txt", b"dots")]))

    # ---- not a zip, or cut short ----
    refuse("empty.zip", b"", "is not a valid zip file (the file is empty)")
    refuse("not_a_zip.txt", b"hello, I am not a zip file at all, but long enough to look at\n",
           "is not a valid zip file (")
    refuse("only_a_signature.zip", b"PK\3\4", "is not a valid zip file (")
    refuse("truncated_half.zip", deflated[: len(deflated) // 2], "is not a valid zip file (")
    refuse("truncated_end_record.zip", deflated[:-10], "is not a valid zip file (")
    cds = central_headers(deflated)
    refuse("truncated_in_central_directory.zip", deflated[: cds[1] + 10], "is not a valid zip file (")

    # ---- offsets and sizes that point elsewhere ----
    eocd = len(stored) - 22
    scd = central_headers(stored)
    refuse("bad_cd_offset.zip", patch(stored, eocd + 16, "<I", 0xFFFFFF00), "is not a valid zip file (")
    refuse("bad_cd_size.zip", patch(stored, eocd + 12, "<I", 0x7FFFFFFF), "is not a valid zip file (")
    refuse("bad_local_offset_past_end.zip", patch(stored, scd[1] + 42, "<I", 0x00FFFFFF), "is not a valid zip file (")
    refuse("bad_local_offset_into_name.zip", patch(stored, scd[1] + 42, "<I", 31), "is not a valid zip file (")
    refuse("bad_comp_size_past_end.zip", patch(stored, scd[1] + 20, "<I", 0x00FFFFFF), "is not a valid zip file (")
    refuse("count_larger_than_cd.zip", patch(patch(stored, eocd + 8, "<H", 1000), eocd + 10, "<H", 1000),
           "is not a valid zip file (")
    refuse("name_length_past_cd.zip", patch(stored, scd[1] + 28, "<H", 0xFFFF), "is not a valid zip file (")
    refuse("extra_length_past_cd.zip", patch(stored, scd[0] + 30, "<H", 0xFFFF), "is not a valid zip file (")

    # ---- names ----
    refuse("long_name_component.zip", pyzip([f("n" * 300, b"a name of 300 bytes")]),
           "has a name too long to unpack")
    refuse("long_name_path.zip", pyzip([f("/".join(["d" * 250] * 20) + "/f", b"5 KB of path")]),
           "has a name too long to unpack")
    for fname, name in [("dotdot.zip", "../evil"), ("dotdot_deep.zip", "a/b/../../../evil"),
                        ("dotdot_inside.zip", "a/../b.txt"), ("dotdot_backslash.zip", "a\\..\\..\\evil"),
                        ("absolute.zip", "/etc/cw-corpus-evil"), ("absolute_backslash.zip", "\\abs"),
                        ("drive_letter.zip", "C:\\evil"), ("drive_letter_slash.zip", "c:/evil"),
                        ("just_dotdot.zip", "..")]:
        refuse(fname, pyzip([f("ok.txt", b"fine"), f(name, b"evil")]),
               "zip entry '%s' points outside the folder it is unpacked into" % name)
    refuse("dot_file_no_name.zip", pyzip([f(".", b"no name")]), "zip entry '.' has no file name")
    refuse("duplicate_names.zip", raw_zip([{"name": b"a.txt", "data": b"first"},
                                           {"name": b"a.txt", "data": b"second"}]), "is not a valid zip file (")

    # ---- links and encryption ----
    refuse("symlink.zip", pyzip([f("ok.txt", b"fine"), f("link", b"/etc/passwd", stat.S_IFLNK | 0o777)]),
           "zip entry 'link' is a symbolic link")
    refuse("symlink_then_file_through_it.zip",
           pyzip([f("up", b"../..", stat.S_IFLNK | 0o777), f("up/escaped.txt", b"evil")]),
           "zip entry 'up' is a symbolic link")
    refuse("encrypted_zipcrypto.zip", raw_zip([{"name": b"secret.txt", "data": b"x" * 12 + b"secret",
                                                "flags": 1}]), "zip entry 'secret.txt' is encrypted")

    # ---- sizes and counts ----
    refuse("too_many_entries.zip", pyzip([f("f%03d" % i, b"x") for i in range(MAX_ENTRIES + 1)]),
           "the zip has 101 entries, more than the 100 allowed")
    zeros = b"\0" * (MAX_BYTES + 1_000_000)
    refuse("bomb_declared.zip", pyzip([f("zeros.bin", zeros)]), "the zip unpacks to more than 0.01 GB")
    refuse("huge_declared_size.zip", raw_zip([{"name": b"huge.bin", "data": b"0123456789", "size": 0xFFFFFFF0}]),
           "the zip unpacks to more than 0.01 GB")
    z64 = raw_zip([{"name": b"huge.bin", "data": b"0123456789"}], zip64=True)
    z64cd = central_headers(z64)[0]
    # 2^62 bytes declared in ZIP64 extra fields that agree, local and central.
    refuse("huge_declared_size_zip64.zip",
           raw_zip([{"name": b"huge.bin", "data": b"0123456789", "size": 1 << 62, "zip64_sizes": True}], zip64=True),
           "the zip unpacks to more than 0.01 GB")
    # Offset and sizes all ones with no ZIP64 extra field at all.
    refuse("zip64_missing_extra.zip", patch(patch(stored, scd[0] + 20, "<I", 0xFFFFFFFF), scd[0] + 24, "<I",
                                            0xFFFFFFFF), "is not a valid zip file (")
    refuse("zip64_short_extra.zip", patch(z64, z64cd + 46 + len(b"huge.bin") + 2, "<H", 4),
           "is not a valid zip file (")
    loc = z64.rfind(b"PK\6\7")
    refuse("zip64_bad_locator.zip", patch(z64, loc + 8, "<Q", 1 << 40), "is not a valid zip file (")
    refuse("zip64_locator_into_itself.zip", patch(z64, loc + 8, "<Q", loc - 10), "is not a valid zip file (")
    rec = z64.rfind(b"PK\6\6")
    refuse("zip64_huge_count.zip", patch(patch(z64, rec + 24, "<Q", 1 << 40), rec + 32, "<Q", 1 << 40),
           "is not a valid zip file (")
    refuse("zip64_cd_offset_past_end.zip", patch(z64, rec + 48, "<Q", 1 << 50), "is not a valid zip file (")

    # ---- layouts that share bytes (the non-recursive zip bomb) ----
    refuse("overlap_aliases.zip", raw_zip([{"name": b"kernel.bin", "data": b"k" * 1000},
                                           {"name": b"other.txt", "data": b"x"}],
                                          aliases=[(0, b"copy1.bin"), (0, b"copy2.bin")]),
           "the zip's entries overlap; it is not a valid archive")
    inner = raw_zip([{"name": b"inner.txt", "data": b"inner"}])
    outer = raw_zip([{"name": b"outer.bin", "data": inner[: inner.find(b"PK\1\2")]},
                     {"name": b"inner.txt", "data": b"inner"}])
    refuse("overlap_into_data.zip", patch(outer, central_headers(outer)[1] + 42, "<I", 30 + 9),
           "the zip's entries overlap")
    # One entry whose declared data runs on into the central directory.
    g = raw_zip([{"name": b"a.txt", "data": b"aaa"}])
    gcd = central_headers(g)[0]
    grown = gcd - 30 - 5 + 20  # 20 bytes into the central directory
    for at in (18, 22):
        g = patch(g, at, "<I", grown)
    for at in (gcd + 20, gcd + 24):
        g = patch(g, at, "<I", grown)
    refuse("overlap_central_directory.zip", g, "is not a valid zip file (")  # libzip sees it first

    # ---- accepted, then stopped while unpacking ----
    liar = pyzip([f("sub/first.txt", b"written before the liar"), f("liar.bin", zeros)])
    lcd = central_headers(liar)[1]
    lloc = struct.unpack_from("<I", liar, lcd + 42)[0]
    liar = patch(patch(liar, lcd + 24, "<I", 1000), lloc + 22, "<I", 1000)
    unpack_fails("liar_size.zip", liar, "entry 'liar.bin' holds more than the zip declares")
    unpack_fails("file_in_the_way_of_a_folder.zip", pyzip([f("a", b"file"), f("a/b.txt", b"x")]),
                 "a file of that name is in the way")
    bad = bytearray(pyzip([f("z.txt", b"z" * 5000)]))
    bad[30 + 5 + 3] ^= 0x55
    unpack_fails("corrupt_deflate_data.zip", bytes(bad), "is not a valid zip file (entry 'z.txt'")
    bad_crc = raw_zip([{"name": b"c.txt", "data": b"crc"}])
    c0 = central_headers(bad_crc)[0]
    bad_crc = patch(patch(bad_crc, 14, "<I", 0xDEADBEEF), c0 + 16, "<I", 0xDEADBEEF)
    unpack_fails("bad_crc.zip", bad_crc, "is not a valid zip file (entry 'c.txt'")
    unpack_fails("unknown_method.zip", raw_zip([{"name": b"m.bin", "data": b"data", "method": 7}]),
                 "zip entry 'm.bin' cannot be unpacked")
    deflated_entry = raw_zip([{"name": b"d.txt", "data": TEXT, "comp": deflate(TEXT), "method": 8}])
    accept("valid_raw_deflate.zip", deflated_entry)

    # ---- random damage: flipped bytes and cuts ----
    rng = random.Random(20261204)
    seeds = [("deflate", deflated), ("stored", stored), ("descriptor", descriptor), ("zip64", zip64),
             ("comment", commented), ("raw_deflate", deflated_entry)]
    for label, data in seeds:
        cd_start = central_headers(data)[0] if central_headers(data) else len(data) - 22
        for i in range(10):
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                # Half the flips land in the central directory and end records.
                at = rng.randrange(cd_start, len(b)) if rng.random() < 0.5 else rng.randrange(len(b))
                b[at] ^= rng.randint(1, 255)
            put("flip_%s_%02d.zip" % (label, i), bytes(b), "any")
        for i in range(3):
            cut = rng.randrange(1, len(data) - 22)
            put("cut_%s_%02d.zip" % (label, i), data[:cut], "any")

    with open(os.path.join(OUT, "expected.tsv"), "w") as out:
        out.write("# Written by ../make_zip_corpus.py; see there. file\tverdict\tcode\tmessage\n")
        for row in expected:
            out.write("\t".join(row) + "\n")


if __name__ == "__main__":
    main()
