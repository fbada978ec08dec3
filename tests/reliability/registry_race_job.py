"""One registration in its own process, released together with the others (registry race test).

    python registry_race_job.py BUNDLE_DIR REGISTRY NAME RUN_ID   → "ready", then (after a line on stdin)
                                                                      the registration as JSON

boto3 is imported and the client created before "ready", so every process leaves the barrier ready to send.
"""

import json
import sys

from facet_lib import registry, storage

if __name__ == "__main__":
    bundle, reg, name, run_id = sys.argv[1:5]
    storage.client()
    print("ready", flush=True)
    sys.stdin.readline()  # the barrier: the test releases every process at once
    info = registry.register(bundle, reg, name, run_id, {"run": run_id}, {}, {"run_id": run_id})
    print(json.dumps(info), flush=True)
