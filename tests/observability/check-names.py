#!/usr/bin/env python3
"""check-names.py: every metric a rule or a dashboard of k8s/observability queries is one that
Switchboard exports (a name registered in services/ or mesh/, or Prometheus' own `up`).

Usage: check-names.py ROOT [FILE...]  (default: the rule files and dashboards under ROOT)
Prints each unknown name with where it is used; exit status 1 when there is one."""
import glob, json, os, re, sys

root = sys.argv[1]
files = sys.argv[2:] or (sorted(glob.glob(f"{root}/k8s/observability/rules/*.yaml")) +
                         sorted(glob.glob(f"{root}/k8s/observability/dashboards/*.json")))

known = {"up"}
for src in glob.glob(f"{root}/services/**/*.c", recursive=True) + \
        glob.glob(f"{root}/mesh/**/*.c", recursive=True):
    if src.endswith("_test.c"):
        continue
    with open(src, errors="replace") as f:
        known.update(re.findall(r'"([a-z][a-z0-9_]*)"', f.read()))

PROMQL = {"sum", "min", "max", "avg", "count", "rate", "irate", "increase", "by", "without",
          "on", "ignoring", "group_left", "group_right", "or", "and", "unless", "bool",
          "histogram_quantile", "vector", "time", "offset", "topk", "bottomk", "abs",
          "clamp_min", "clamp_max", "delta", "deriv", "absent", "label_replace", "humanize"}

def exprs(path):
    if path.endswith(".json"):
        with open(path) as f:
            d = json.load(f)
        def walk(p):
            for t in p.get("targets", []):
                yield t["expr"]
            for c in p.get("panels", []):
                yield from walk(c)
        for p in d.get("panels", []):
            yield from walk(p)
    else:
        text = open(path).read()
        # rule files: the expr of each rule, one line or a block scalar
        for m in re.finditer(r"^(\s*)expr:\s*(\|?)(.*)\n((?:\1\s+.*\n)*)", text, re.M):
            yield m.group(3) if not m.group(2) else m.group(4)

def names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    e = re.sub(r"\{[^}]*\}", " ", e)                        # label matchers
    e = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", e)  # grouping labels
    e = re.sub(r"\[[^\]]*\]", " ", e)                       # ranges
    for tok in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        t = tok.group(0)
        rest = e[tok.end():].lstrip()
        if t in PROMQL or rest.startswith("("):
            continue
        yield t

bad = 0
for path in files:
    for ex in exprs(path):
        for n in names(ex):
            base = re.sub(r"_(bucket|sum|count)$", "", n)
            if n not in known and base not in known:
                print(f"{os.path.relpath(path, root)}: unknown metric {n}")
                bad += 1
if bad:
    sys.exit(1)
print(f"ok: every metric queried by {len(files)} file(s) is exported")
