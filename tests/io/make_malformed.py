#!/usr/bin/env python3
"""Regenerates tests/io/malformed/*.safetensors: one small file per way a safetensors file can be
broken. tests/io/test_safetensors.cpp expects each to be rejected with a message naming the file
and the field; add a row there when adding a file here.

Run from anywhere:  python3 tests/io/make_malformed.py
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "malformed")


def raw(name, data):
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(data)


def st(name, header, buffer=b"", header_len=None):
    """A file with `header` (a dict, or str/bytes written verbatim) and `buffer` as its data."""
    if isinstance(header, bytes):
        h = header
    elif isinstance(header, str):
        h = header.encode("utf-8")
    else:
        h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    n = len(h) if header_len is None else header_len
    raw(name, struct.pack("<Q", n) + h + buffer)


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(OUT, f))
    z = lambda n: bytes(n)  # noqa: E731

    raw("truncated", b"\x10\x00\x00\x00\x00")
    st("header_too_long", {"w": t("F32", [1], 0, 4)}, z(4), header_len=200_000_000)
    st("header_beyond_file", {"w": t("F32", [1], 0, 4)}, z(4), header_len=1000)
    st("empty_header", "", b"")
    st("bad_json", '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', z(4))
    st("bad_utf8", b'{"w\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', z(4))
    st("number_overflow", '{"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}', z(4))
    st("header_not_object", "[1,2,3]", b"")
    st("deep_nesting", '{"__metadata__":' + "[" * 40 + "]" * 40 + "}", b"")
    st("metadata_not_object", {"__metadata__": ["a", "b"]}, b"")
    st("metadata_not_strings", {"__metadata__": {"epoch": 3}}, b"")
    st("duplicate_key",
       '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
       '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', z(8))
    st("entry_not_object", {"w": 5}, b"")
    st("missing_dtype", {"w": {"shape": [1], "data_offsets": [0, 4]}}, z(4))
    st("missing_shape", {"w": {"dtype": "F32", "data_offsets": [0, 4]}}, z(4))
    st("missing_offsets", {"w": {"dtype": "F32", "shape": [1]}}, z(4))
    st("dtype_not_string", {"w": t(32, [1], 0, 4)}, z(4))
    st("unknown_dtype", {"w": t("F31", [1], 0, 4)}, z(4))
    st("shape_not_array", {"w": t("F32", "3x3", 0, 36)}, z(36))
    st("negative_dim", {"w": t("F32", [-1, 4], 0, 16)}, z(16))
    st("float_dim", {"w": t("F32", [2.5], 0, 8)}, z(8))
    st("dim_too_large", {"w": t("U8", [2**64 - 1], 0, 8)}, z(8))
    st("size_overflow", {"w": t("F32", [2**62, 4], 0, 8)}, z(8))
    st("size_mismatch", {"w": t("F32", [3, 3], 0, 100)}, z(100))
    st("offsets_wrong_length", {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, z(4))
    st("negative_offset", {"w": t("F32", [2], -8, 0)}, z(8))
    st("offsets_reversed", {"w": t("F32", [2], 8, 0)}, z(8))
    st("offsets_beyond_buffer", {"w": t("F32", [16], 0, 64)}, z(16))
    st("overlapping_offsets", {"a": t("F32", [4], 0, 16), "b": t("F32", [4], 8, 24)}, z(24))
    st("gap_in_offsets", {"a": t("F32", [2], 0, 8), "b": t("F32", [2], 12, 20)}, z(20))
    st("offsets_not_from_zero", {"w": t("F32", [2], 4, 12)}, z(12))
    st("trailing_bytes", {"w": t("F32", [2], 0, 8)}, z(12))


if __name__ == "__main__":
    main()
