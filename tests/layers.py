"""The user/ modules' layering, as the README's "How it works" states it:
each module includes headers of lower layers only, so dependencies run one
way, from the BPF records up to the commands. No root needed."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lowest first. A module is a user/NAME.c with its NAME.h, or a header alone.
LAYERS = [
    {"katrace", "http_methods"},                 # bpf/: the records, shared with BPF
    {"http", "advice", "args", "counters", "loader", "procfs", "endpoint"},
    {"conn", "tlsprobe"},                        # the connection model; the TLS probes
    {"conntab", "owners", "capture", "timeline"},
    {"analyze"},
    {"output", "html"},                          # renderers print what analysis found
    {"session"},                                 # the join: records in, analysis, output
    {"metrics", "check"},
    {"main"},
]


def layer_of(name):
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    return None


def violations():
    """Every include of a module's own layer or above, and every module the
    table does not place."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "user", "*.[ch]"))):
        name = os.path.splitext(os.path.basename(path))[0]
        mine = layer_of(name)
        if mine is None:
            found.append(f"{name}: not in the layer table (tests/layers.py)")
            continue
        for inc in re.findall(r'^#include "([\w.]+)\.h"', open(path).read(), re.M):
            if inc == name or inc.endswith(".skel"):
                continue
            theirs = layer_of(inc)
            if theirs is None or theirs >= mine:
                found.append(f"user/{os.path.basename(path)} includes {inc}.h "
                             f"(layer {theirs}, its own is {mine})")
    return found
