"""Print the third-party requirements of the project's core plus the given extras, one per line.

Used by the Dockerfiles to install dependencies (with constraints.txt) in a layer that does not change
when only the source changes. Self-references such as ``facet-vlm-ops[...]`` are expanded.
Usage: python deps.py pyproject.toml model serve
"""

import sys

import tomllib

NAME = "facet-vlm-ops"


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    optional = project.get("optional-dependencies", {})
    out: list[str] = list(project["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"{pyproject}: no optional-dependencies extra {extra!r} (have: {sorted(optional)})")
        seen.add(extra)
        for req in optional[extra]:
            if req.replace(" ", "").startswith(NAME + "["):
                todo.extend(req.split("[", 1)[1].split("]", 1)[0].split(","))
            else:
                out.append(req)
    return sorted(set(out))


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2:])))
