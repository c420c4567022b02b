#!/usr/bin/env python3
"""The service models -> the request validator's tables (store/validate.c).

    scripts/gen-model.py trim MODEL.json OUT.json
        keeps what validation needs of an official service model (operations'
        input shapes, the shapes they reach, their constraints; no
        documentation): how the JSON files of store/model/ were made from the models
        (re-run it when a model is updated).
    scripts/gen-model.py c OUT.c MODEL.json...
        writes the C tables (store_internal.h's store_model_*) that the
        Makefile compiles into the library: one entry per shape reachable
        from an operation's input, its members, enums and patterns.  The Java
        patterns of the model are translated to POSIX extended expressions
        (regcomp), anchored at both ends as the service matches them.

Standard library only; deterministic output (sorted), so the build is
reproducible.
"""
import json
import sys

KINDS = {"structure": "SM_STRUCT", "list": "SM_LIST", "map": "SM_MAP", "string": "SM_STRING",
         "integer": "SM_INT", "long": "SM_INT", "boolean": "SM_BOOL", "double": "SM_DOUBLE",
         "float": "SM_DOUBLE", "timestamp": "SM_TIMESTAMP", "blob": "SM_BLOB"}
# Members the model requires that codebuild-local lets a caller leave out
# (README, "differences"): there is no IAM locally, so no role to name.
LOCAL_OPTIONAL = {("CodeBuild_20161006", "CreateProjectInput", "serviceRole")}
KEEP = ("type", "required", "min", "max", "enum", "pattern")


def reachable(model):
    shapes = model["shapes"]
    seen = set()
    todo = [op["input"]["shape"] for op in model["operations"].values() if "input" in op]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        s = shapes[n]
        for m in s.get("members", {}).values():
            todo.append(m["shape"])
        for k in ("member", "key", "value"):
            if k in s:
                todo.append(s[k]["shape"])
    return seen


def trim(model):
    keep = reachable(model)
    shapes = {}
    for n in sorted(keep):
        s = model["shapes"][n]
        t = {k: s[k] for k in KEEP if k in s}
        if "members" in s:
            t["members"] = {k: {"shape": v["shape"]} for k, v in s["members"].items()}
        for k in ("member", "key", "value"):
            if k in s:
                t[k] = {"shape": s[k]["shape"]}
        shapes[n] = t
    ops = {n: ({"input": op["input"]} if "input" in op else {})
           for n, op in sorted(model["operations"].items())}
    md = {k: model["metadata"][k] for k in ("targetPrefix", "serviceId", "apiVersion")}
    return {"metadata": md, "operations": ops, "shapes": shapes}


def bracket(body):
    """Contents of a Java [...] class -> a POSIX bracket expression."""
    neg = body.startswith("^")
    if neg:
        body = body[1:]
    classes, items, dash, i = [], [], False, 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            e = body[i + 1]
            if e == "p":
                name = body[i + 3]
                i += 5
                classes.append({"L": "[:alpha:]\x80-\xff", "N": "[:digit:]", "Z": " "}[name])
                continue
            i += 2
            if e == "w":
                classes.append("[:alnum:]_")
            elif e == "d":
                classes.append("[:digit:]")
            elif e == "-":
                dash = True
            else:
                items.append(e)
            continue
        if c == "-" and (not items or i + 1 == len(body)):
            dash = True
            i += 1
            continue
        if c == "-" and i + 1 < len(body):
            items[-1] = items[-1] + "-" + body[i + 1]
            i += 2
            continue
        items.append(c)
        i += 1
    lits = "".join(items)
    close = "]" if "]" in lits else ""
    lits = lits.replace("]", "")
    hat = "^" in lits
    lits = lits.replace("^", "")
    return "[" + ("^" if neg else "") + close + "".join(classes) + lits + ("^" if hat else "") + \
        ("-" if dash else "") + "]"


def posix(pat):
    out, i = [], 0
    while i < len(pat):
        c = pat[i]
        if c == "[":
            j = i + 1
            if pat[j] == "^":
                j += 1
            while pat[j] != "]":
                j += 2 if pat[j] == "\\" else 1
            out.append(bracket(pat[i + 1:j]))
            i = j + 1
        elif c == "\\":
            e = pat[i + 1]
            out.append({"S": "[^[:space:]]", "s": "[[:space:]]", "d": "[0-9]", "w": "[[:alnum:]_]"}
                       .get(e, "\\" + e))
            i += 2
        else:
            out.append(c)
            i += 1
    return "^(" + "".join(out) + ")$"


def cstr(s):
    r = []
    # latin-1: the translated patterns' \x80-\xff range is raw bytes
    for ch in s.encode("latin-1" if max(map(ord, s), default=0) < 256 else "utf-8"):
        if ch in (0x22, 0x5c):
            r.append("\\" + chr(ch))
        elif 0x20 <= ch < 0x7f and ch != 0x3f:
            r.append(chr(ch))
        else:
            r.append("\\%03o" % ch)
    return '"' + "".join(r) + '"'


def gen_c(models):
    shapes, index, members, enums, pats, ops = [], {}, [], [], [], []

    def pat_index(p):
        if p not in pats:
            pats.append(p)
        return pats.index(p) + 1

    for model in models:
        prefix = model["metadata"]["targetPrefix"]
        names = sorted(reachable(model))
        base = len(shapes)
        for k, n in enumerate(names):
            index[(prefix, n)] = base + k
        for n in names:
            s = model["shapes"][n]
            kind = KINDS[s["type"]]
            flags = []
            if "min" in s:
                flags.append("SM_HAS_MIN")
            if "max" in s:
                flags.append("SM_HAS_MAX")
            a = b = 0
            if kind == "SM_STRUCT":
                a = len(members)
                req = {r for r in s.get("required", []) if (prefix, n, r) not in LOCAL_OPTIONAL}
                for mn, m in s.get("members", {}).items():
                    members.append((mn, (prefix, m["shape"]), mn in req))
                b = len(members) - a
            elif kind == "SM_LIST":
                a = (prefix, s["member"]["shape"])
            elif kind == "SM_MAP":
                a, b = (prefix, s["key"]["shape"]), (prefix, s["value"]["shape"])
            elif "enum" in s:
                a, b = len(enums), len(s["enum"])
                enums.extend(s["enum"])
            p = pat_index(s["pattern"]) if "pattern" in s else 0
            shapes.append([kind, flags, p, a, b, s.get("min", 0), s.get("max", 0), n])
        for on, op in sorted(model["operations"].items()):
            ops.append((prefix + "." + on, index[(prefix, op["input"]["shape"])] if "input" in op
                        else -1))

    def ref(x):
        return index[x] if isinstance(x, tuple) else x

    out = ["/* Generated by scripts/gen-model.py from the JSON files of store/model/: do not edit. */",
           '#include "store/store_internal.h"', "", "const store_mshape store_model_shapes[] = {"]
    for kind, flags, p, a, b, lo, hi, n in shapes:
        out.append("\t{%s, %s, %d, %d, %d, %dLL, %dLL}, /* %s */" % (
            kind, "|".join(flags) or "0", p, ref(a), ref(b), lo, hi, n))
    out.append("};")
    out.append("const store_mmember store_model_members[] = {")
    for mn, sh, req in members:
        out.append("\t{%s, %d, %d}," % (cstr(mn), index[sh], 1 if req else 0))
    out.append("};")
    out.append("const char *const store_model_enums[] = {")
    out.extend("\t%s," % cstr(e) for e in enums)
    out.append("};")
    out.append("const store_mpattern store_model_patterns[] = {\n\t{NULL, NULL},")
    out.extend("\t{%s, %s}," % (cstr(p), cstr(posix(p))) for p in pats)
    out.append("};")
    out.append("const size_t store_model_npatterns = %d;" % (len(pats) + 1))
    out.append("const store_mop store_model_ops[] = {")
    out.extend("\t{%s, %d}," % (cstr(t), i) for t, i in sorted(ops))
    out.append("};")
    out.append("const size_t store_model_nops = %d;" % len(ops))
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) == 4 and argv[1] == "trim":
        with open(argv[2]) as f:
            m = trim(json.load(f))
        with open(argv[3], "w") as f:
            json.dump(m, f, indent=1)
            f.write("\n")
        return 0
    if len(argv) >= 4 and argv[1] == "c":
        models = []
        for p in argv[3:]:
            with open(p) as f:
                models.append(json.load(f))
        text = gen_c(models)
        with open(argv[2] + ".tmp", "w") as f:
            f.write(text)
        import os
        os.replace(argv[2] + ".tmp", argv[2])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
