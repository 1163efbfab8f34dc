"""Print what an install changed; exit 1 if it changed a pinned package.

    python .ci/pins_unchanged.py PINS FREEZE_BEFORE FREEZE_AFTER
"""

import re
import sys


def versions(path):
    """{name: version, or the URL of a direct install} of a requirements or `pip freeze` file."""
    out = {}
    for line in open(path):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==|@)\s*(\S+)", line)
        if match:
            out[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return out


pins, before, after = (versions(p) for p in sys.argv[1:])
changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
for name in changed:
    print(f"  {name}: {before.get(name, '-')} -> {after.get(name, '-')}")
broken = [n for n in pins if after.get(n) != pins[n]]
if broken:
    sys.exit("installing the project changed pinned packages: " + ", ".join(broken))
print(f"all {len(pins)} pinned packages unchanged")
