"""A fleet's repeated PSRP messages are serialised and deserialised once per run (pypsrp fixes 10 and 11).

Every node of a `status` is sent the same pool-opening messages and the same host-facts pipeline, and most
answer the opening alike. pypsrp_fixes packs a repeated message from the XML it made the first time and
copies a repeated answer's result; this counts, in a real run against the lab, how often pypsrp's serialiser
and deserialiser actually ran for those message types. It fails if what the fixes remember stops matching
across nodes (a per-node id in the data, say): each node would then be serialised again.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.conftest import LabClient

PROBE = """
import collections, contextlib, io, json, sys
from hcibenefit.remoting import pypsrp_fixes
pypsrp_fixes.load()
from pypsrp.serializer import Serializer

serialised, deserialised = collections.Counter(), collections.Counter()
serialize, deserialize = Serializer.serialize, Serializer.deserialize

def counting_serialize(self, value, metadata=None, parent=None, clear=True):
    if clear:
        serialised[type(value).__name__] += 1
    return serialize(self, value, metadata, parent, clear)

def counting_deserialize(self, element, metadata=None, clear=True):
    if clear and metadata is not None and getattr(metadata, "object", None) is not None:
        deserialised[metadata.object.__name__] += 1
    return deserialize(self, element, metadata, clear)

Serializer.serialize, Serializer.deserialize = counting_serialize, counting_deserialize
from hcibenefit.cli.app import run
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    code = run(["-i", sys.argv[1], "status", "-o", "json", "--fail-on", "none"])
nodes = len(json.loads(out.getvalue())["nodes"])
print(json.dumps({"code": code, "nodes": nodes, "serialised": serialised, "deserialised": deserialised}))
"""


def test_a_status_serialises_its_repeated_messages_once(lab: LabClient) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(lab.inventory)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["code"] == 0 and seen["nodes"] >= 4
    serialised, deserialised = seen["serialised"], seen["deserialised"]
    # The same opening and the same host-facts pipeline for every node: pypsrp serialised each once.
    assert serialised == {"SessionCapability": 1, "InitRunspacePool": 1, "CreatePipeline": 1}, serialised
    # The nodes' answers to the opening and their finished pipelines: fewer than one each per node.
    for answer in (
        "SessionCapability",
        "ApplicationPrivateData",
        "RunspacePoolStateMessage",
        "PipelineState",
    ):
        assert 1 <= deserialised.get(answer, 0) < seen["nodes"], (answer, deserialised)
