#!/usr/bin/env python3
# json-shape-diff.py D B [--values]: the key paths and value types of two JSON documents (or JSON
# lines), dockerd's (D) against berthd's (B). Map keys that are 64-hex IDs become <id>; array
# elements are merged under path[]; types: null, bool, int, float, str, list, list(empty), obj, obj(empty).
# --values: also the scalar values at paths of the same type whose sets of values differ.
import json, re, sys
def load(p):
    t = open(p).read().strip()
    try: return json.loads(t)
    except Exception:
        return [json.loads(l) for l in t.splitlines() if l.strip()]
HEX = re.compile(r'^[0-9a-f]{64}$')
def tname(v):
    if v is None: return 'null'
    if isinstance(v, bool): return 'bool'
    if isinstance(v, int): return 'int'
    if isinstance(v, float): return 'float'
    if isinstance(v, str): return 'str'
    if isinstance(v, list): return 'list' if v else 'list(empty)'
    return 'obj' if v else 'obj(empty)'
def walk(v, path, out, vals):
    out.setdefault(path, set()).add(tname(v))
    if isinstance(v, dict):
        for k, x in v.items():
            k2 = '<id>' if HEX.match(k) else k
            walk(x, path + '.' + k2, out, vals)
    elif isinstance(v, list):
        for x in v: walk(x, path + '[]', out, vals)
    else:
        vals.setdefault(path, set()).add(json.dumps(v)[:80])
d, b = {}, {}; dv, bv = {}, {}
walk(load(sys.argv[1]), '', d, dv); walk(load(sys.argv[2]), '', b, bv)
for p in sorted(set(d) | set(b)):
    if p not in b: print(f'  only dockerd: {p} {sorted(d[p])}')
    elif p not in d: print(f'  only berthd:  {p} {sorted(b[p])}')
    elif d[p] != b[p]: print(f'  type: {p} dockerd={sorted(d[p])} berthd={sorted(b[p])}')
    elif '--values' in sys.argv and p in dv and dv[p] != bv.get(p):
        print(f'  value: {p} dockerd={sorted(dv[p])[:3]} berthd={sorted(bv.get(p, []))[:3]}')
