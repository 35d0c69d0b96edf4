"""Write a minimal raw BTF file holding only chosen tracepoint typedefs, to
show katrace a kernel that lacks some tracepoint (katrace --btf FILE)."""
import struct

KIND_INT, KIND_PTR, KIND_TYPEDEF, KIND_FUNC_PROTO = 1, 2, 8, 13


def write(path, tracepoints):
    """tracepoints: {name: number_of_args}"""
    strings = b"\0"
    types = b""

    def name(s):
        nonlocal strings
        off = len(strings)
        strings += s.encode() + b"\0"
        return off

    def add(name_off, kind, vlen, size_or_type, extra=b""):
        nonlocal types, next_id
        types += struct.pack("<III", name_off, (kind << 24) | vlen, size_or_type) + extra
        next_id += 1
        return next_id - 1

    next_id = 1
    long_t = add(name("long"), KIND_INT, 0, 8, struct.pack("<I", (1 << 24) | 64))
    void_ptr = add(0, KIND_PTR, 0, 0)
    for tp, nargs in tracepoints.items():
        params = b"".join(struct.pack("<II", 0, void_ptr if i == 0 else long_t)
                          for i in range(nargs + 1))
        proto = add(0, KIND_FUNC_PROTO, nargs + 1, 0, params)
        ptr = add(0, KIND_PTR, 0, proto)
        add(name("btf_trace_" + tp), KIND_TYPEDEF, 0, ptr)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    with open(path, "wb") as f:
        f.write(hdr + types + strings)
