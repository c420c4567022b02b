"""Request validation against the service models, through `serve`.

The test walks the official models (../shared/reference/models, or
$CBL_SHARED): for every operation the server supports, a valid request is
built from the input shape, then one member at a time is given a value that
breaks one of its constraints (a missing required member, an enum, a length,
a pattern, a range, a list's length, a list element), and the answer must be
the service's exception with its exact wording, computed here from the
model by an implementation of the rules of its own:

  1 validation error detected: Value 'FOO' at 'environmentTypeOverride'
  failed to satisfy constraint: Member must satisfy enum value set: [...]

Requests are signed by botocore's signer and sent as built (the clients'
own validation would stop most of them). A few cases go through
/usr/bin/aws, which validates nothing of enums and patterns itself."""
import json
import os
import re
from pathlib import Path

import pytest

from test_server import aws, raw, start_server

SHARED = Path(os.environ.get("CBL_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared"))
MODELS = SHARED / "reference" / "models"
SERVICES = [
    ("codebuild", "codebuild.service-2.json", "InvalidInputException"),
    ("logs", "logs.service-2.json", "InvalidParameterException"),
]
# the one member the model requires that codebuild-local makes optional
# (README: no IAM locally)
LOCAL_OPTIONAL = {("CreateProjectInput", "serviceRole")}
MAX_DEPTH = 5

pytestmark = pytest.mark.skipif(not MODELS.is_dir(), reason="no ../shared/reference/models")


def load(name):
    with open(MODELS / name) as f:
        return json.load(f)


def pyre(pattern):
    """A model (Java) pattern as a Python one, matched against the whole value."""
    p = pattern.replace(r"\p{L}", "a-zA-Z\u00c0-\uffff").replace(r"\p{Z}", " ").replace(r"\p{N}", "0-9")
    return re.compile(p)


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def render(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(render(x) for x in v) + "]"
    return str(v)


def error(path, value, constraint):
    r = render(value)
    if r is None:
        shown = "Value null"
    else:
        shown = "Value '" + (r[:200] + "..." if len(r) > 200 else r) + "'"
    return f"{shown} at '{path}' failed to satisfy constraint: {constraint}"


def message(errors):
    n = len(errors)
    return f"{n} validation error{'' if n == 1 else 's'} detected: " + "; ".join(errors)


def scalar_errors(shape, value):
    """The constraints value breaks, in the order the service lists them."""
    out = []
    t = shape["type"]
    if t == "string":
        n = utf16_len(value)
        if "min" in shape and n < shape["min"]:
            out.append(f"Member must have length greater than or equal to {shape['min']}")
        if "max" in shape and n > shape["max"]:
            out.append(f"Member must have length less than or equal to {shape['max']}")
        if "pattern" in shape and not pyre(shape["pattern"]).fullmatch(value):
            out.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
        if "enum" in shape and value not in shape["enum"]:
            out.append("Member must satisfy enum value set: [" + ", ".join(shape["enum"]) + "]")
    elif t in ("integer", "long"):
        if "min" in shape and value < shape["min"]:
            out.append(f"Member must have value greater than or equal to {shape['min']}")
        if "max" in shape and value > shape["max"]:
            out.append(f"Member must have value less than or equal to {shape['max']}")
    return out


def constraint_list(shape):
    word = "length" if shape["type"] == "string" else "value"
    c = []
    if "max" in shape:
        c.append(f"Member must have {word} less than or equal to {shape['max']}")
    if "min" in shape:
        c.append(f"Member must have {word} greater than or equal to {shape['min']}")
    if "pattern" in shape:
        c.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
    if "enum" in shape:
        c.append("Member must satisfy enum value set: [" + ", ".join(shape["enum"]) + "]")
    return "[" + ", ".join(c) + "]"


STRING_CANDIDATES = ["abc-12", "abcdef", "a1", "123456789012", "1.0",
                     "arn:aws:kms:us-east-1:123456789012:key/abc", "s3://bucket-1/x",
                     "https://a.example.com", "x" * 40]
BAD_PATTERN_CANDIDATES = ["a b;*:!", "!", "-", " x", "a:*", "ab cd", "\t"]


class Walker:
    def __init__(self, model):
        self.shapes = model["shapes"]

    def valid(self, name, depth=0, nonempty=False):
        s = self.shapes[name]
        t = s["type"]
        if t == "structure":
            out = {}
            if depth < MAX_DEPTH:
                for m in s.get("required", []):
                    if (name, m) not in LOCAL_OPTIONAL:
                        out[m] = self.valid(s["members"][m]["shape"], depth + 1)
            return out
        if t == "list":
            n = max(s.get("min", 0), 1 if nonempty else 0)
            return [self.valid(s["member"]["shape"], depth + 1, nonempty) for _ in range(n)]
        if t == "map":
            return {}
        if t == "string":
            if "enum" in s:
                return s["enum"][0]
            for c in STRING_CANDIDATES:
                if not scalar_errors(s, c):
                    return c
            return None
        if t in ("integer", "long"):
            return s.get("min", 1) if s.get("min", 1) > 0 else 1
        if t in ("double", "float"):
            return s.get("min", 0)
        if t == "boolean":
            return True
        if t == "timestamp":
            return 0
        return "YQ=="

    def bad_scalars(self, s, good):
        """Values of scalar shape s that break its constraints."""
        t = s["type"]
        out = []
        if t == "string":
            base = good if isinstance(good, str) and good else "a"
            if "enum" in s:
                out.append("NOT_IN_THE_ENUM")
            if s.get("min", 0) > 0:
                out.append(base[:1] * (s["min"] - 1))
            if "max" in s and s["max"] <= 5000:
                out.append((base * (s["max"] // len(base) + 2))[: s["max"] + 1])
            if "pattern" in s:
                for c in BAD_PATTERN_CANDIDATES:
                    if s.get("min", 0) <= utf16_len(c) <= s.get("max", 1 << 30) and \
                            not pyre(s["pattern"]).fullmatch(c):
                        out.append(c)
                        break
        elif t in ("integer", "long"):
            if "min" in s:
                out.append(s["min"] - 1)
            if "max" in s:
                out.append(s["max"] + 1)
        return out

    def cases(self, name, path, value, depth=0):
        """(path-in-the-request, new value or DELETE, expected errors) for the
        members of structure `name`, whose valid value is `value`."""
        s = self.shapes[name]
        if depth >= MAX_DEPTH:
            return
        req = [m for m in s.get("required", []) if (name, m) not in LOCAL_OPTIONAL]
        for m, ref in s.get("members", {}).items():
            mp = f"{path}.{m}" if path else m
            ms = self.shapes[ref["shape"]]
            if m in req:
                yield [m], DELETE, [error(mp, None, "Member must not be null")]
            good = value.get(m) if m in value else self.valid(ref["shape"], depth + 1, True)
            if good is None and ms["type"] == "string":
                continue
            if ms["type"] == "structure":
                for p, v, e in self.cases(ref["shape"], mp, good, depth + 1):
                    yield [m] + p, v, e
            elif ms["type"] == "list":
                yield from self.list_cases(ref["shape"], m, mp, good, depth)
            elif ms["type"] != "map":
                for bad in self.bad_scalars(ms, good):
                    yield [m], bad, [error(mp, bad, c) for c in scalar_errors(ms, bad)]

    def list_cases(self, lname, m, mp, good, depth):
        ls = self.shapes[lname]
        es_name = ls["member"]["shape"]
        es = self.shapes[es_name]
        el = self.valid(es_name, depth + 2, True)
        scalar = es["type"] not in ("structure", "list", "map")
        if ls.get("min", 0) > 0:
            yield [m], [], [error(mp, [], f"Member must have length greater than or equal to {ls['min']}")]
        if "max" in ls and ls["max"] <= 200 and scalar and el is not None:
            v = [el] * (ls["max"] + 1)
            yield [m], v, [error(mp, v, f"Member must have length less than or equal to {ls['max']}")]
        if scalar:
            for bad in self.bad_scalars(es, el):
                v = [bad]
                yield [m], v, [error(mp, v, "Member must satisfy constraint: " + constraint_list(es))]
        elif es["type"] == "structure":
            for p, v, e in self.cases(es_name, f"{mp}.1.member", el, depth + 2):
                yield [m, 0] + p, v, e


DELETE = object()


def mutate(base, path, value):
    req = json.loads(json.dumps(base))
    cur = req
    for k in path[:-1]:
        cur = cur[k]
    if value is DELETE:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return req


def fill(walker, name, base, path):
    """The request with the members the path crosses present (valid)."""
    cur, shape = base, walker.shapes[name]
    for k in path[:-1]:
        if isinstance(k, int):
            ref = shape["member"]["shape"]
            if not cur:
                cur.append(walker.valid(ref, 0, True))
        else:
            ref = shape["members"][k]["shape"]
            if k not in cur:
                cur[k] = walker.valid(ref, 0, True)
        cur, shape = cur[k], walker.shapes[ref]
    return base


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("home"))
    yield s
    assert s.stop() == 0, s.stderr


def supported(url, service, prefix, model):
    ops = []
    for op in sorted(model["operations"]):
        status, _, body = raw(url, f"{prefix}.{op}", "{\"__probe\": 1}", service=service)
        if body.get("__type") != "UnknownOperationException":
            ops.append(op)
    return ops


@pytest.mark.parametrize("service,model_file,exception", SERVICES)
def test_every_constrained_member_is_checked(srv, service, model_file, exception):
    model = load(model_file)
    prefix = model["metadata"]["targetPrefix"]
    walker = Walker(model)
    ops = supported(srv.url, service, prefix, model)
    assert ops, "no operation of the model is supported"
    checked, failures = 0, []
    for op in ops:
        inp = model["operations"][op].get("input")
        if not inp:
            continue
        base = walker.valid(inp["shape"])
        status, _, body = raw(srv.url, f"{prefix}.{op}", json.dumps(base), service=service)
        # an operation may refuse what it cannot do locally (RetryBuild
        # without an id), never a member of the valid request
        refused = re.findall(r" at '([^'.]+)", body.get("message", ""))
        if "validation error" in body.get("message", "") and set(refused) & set(base):
            failures.append(f"{op}: the valid request {base} was refused: {body}")
            continue
        for path, value, expected in walker.cases(inp["shape"], "", base):
            req = mutate(fill(walker, inp["shape"], json.loads(json.dumps(base)), path), path, value)
            want = message(expected)
            status, _, body = raw(srv.url, f"{prefix}.{op}", json.dumps(req), service=service)
            checked += 1
            if status != 400 or body.get("__type") != exception or body.get("message") != want:
                failures.append(f"{op} {path}: sent {json.dumps(req)[:300]}\n  want {exception}: {want}"
                                f"\n  got  {status} {body}")
    print(f"{service}: {len(ops)} operations, {checked} invalid requests")
    assert not failures, f"{len(failures)} of {checked}:\n" + "\n".join(failures[:20])
    assert checked > (200 if service == "codebuild" else 3)


def test_two_errors_in_one_message(srv):
    body = {"projectName": "p", "gitCloneDepthOverride": -1, "queuedTimeoutInMinutesOverride": 1000}
    status, _, r = raw(srv.url, "CodeBuild_20161006.StartBuild", json.dumps(body))
    assert status == 400 and r["__type"] == "InvalidInputException"
    assert r["message"] == (
        "2 validation errors detected: Value '-1' at 'gitCloneDepthOverride' failed to satisfy "
        "constraint: Member must have value greater than or equal to 0; Value '1000' at "
        "'queuedTimeoutInMinutesOverride' failed to satisfy constraint: Member must have value "
        "less than or equal to 480")


@pytest.mark.parametrize("args,op,want", [
    (["codebuild", "start-build", "--project-name", "p", "--environment-type-override", "FOO"],
     "StartBuild", "Value 'FOO' at 'environmentTypeOverride' failed to satisfy constraint: Member "
     "must satisfy enum value set: [WINDOWS_CONTAINER, LINUX_CONTAINER, LINUX_GPU_CONTAINER, "),
    (["codebuild", "start-build", "--project-name", "p", "--image-pull-credentials-type-override", "BAR"],
     "StartBuild", "Value 'BAR' at 'imagePullCredentialsTypeOverride' failed to satisfy constraint: "
     "Member must satisfy enum value set: [CODEBUILD, SERVICE_ROLE]"),
    (["codebuild", "start-build", "--project-name", "p", "--compute-type-override", "FOO"],
     "StartBuild", "Value 'FOO' at 'computeTypeOverride' failed to satisfy constraint: Member must "
     "satisfy enum value set: [BUILD_GENERAL1_SMALL, "),
    (["codebuild", "start-build", "--project-name", "p", "--artifacts-override", "type=FOO"],
     "StartBuild", "Value 'FOO' at 'artifactsOverride.type' failed to satisfy constraint: Member "
     "must satisfy enum value set: [CODEPIPELINE, S3, NO_ARTIFACTS]"),
    (["codebuild", "list-projects", "--sort-by", "FOO"],
     "ListProjects", "Value 'FOO' at 'sortBy' failed to satisfy constraint: Member must satisfy "
     "enum value set: [NAME, CREATED_TIME, LAST_MODIFIED_TIME]"),
    (["logs", "get-log-events", "--log-group-name", "a b", "--log-stream-name", "s"],
     "GetLogEvents", "Value 'a b' at 'logGroupName' failed to satisfy constraint: Member must "
     "satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"),
])
def test_aws_cli(srv, args, op, want):
    p = aws(srv.url, *args)
    assert p.returncode == 254, (p.stdout, p.stderr)
    exc = "InvalidParameterException" if args[0] == "logs" else "InvalidInputException"
    head = f"An error occurred ({exc}) when calling the {op} operation: 1 validation error detected: "
    assert (head + want) in p.stderr, p.stderr
