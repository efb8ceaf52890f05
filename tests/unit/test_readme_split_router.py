"""Issue 13c: the README shows how to build the canary router it mentions (`SplitRouter(client, model,
TrafficSplit(...))` and `router.stats()`) in a Python block, which tests/integration/test_readme_snippets.py
runs as written against a real server."""

from __future__ import annotations

from tests.unit.test_readme_snippets import snippets


def test_the_readme_builds_a_split_router_in_a_runnable_python_block() -> None:
    blocks = [(where, code) for where, code in snippets("python") if where.startswith("README.md")]
    routers = [where for where, code in blocks
               if "SplitRouter(client, " in code and "TrafficSplit({" in code and "router.stats()" in code]
    print(f"README blocks building a SplitRouter: {routers}")
    assert routers, "the README mentions TrafficSplit / router.stats() but never builds the router"
