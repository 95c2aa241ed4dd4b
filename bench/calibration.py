"""Units measured in the same run, so that an absolute time can be read across runs and machines.

An absolute time of this benchmark says as much about the machine at that moment (2 shared cores,
other work on them) as about the code. Each one is printed beside a unit of the same kind measured
in the same run, on the same machine, under the same load:

* `bare_get_item_us`: one GetItem made directly with botocore (no Powertools, no X-Ray), answered
  at once from a recording: CPU µs (the request times of the zero-latency tables, the profile, the
  maintenance and authorization figures are read in these);
* `python_reference_us`: a fixed pure-Python workload (JSON round trips of a fixed document),
  timed at the start and at the end of the run: how fast this interpreter ran then (the two values
  apart say how much the machine drifted during the run);
* `import_boto3_cpu_s` (cold starts) and the one-client latency of the local server (the load runs)
  are measured beside what they calibrate, in their own sections.
"""

from __future__ import annotations

import json
import statistics
import time

_DOCUMENT = [{"service_id": str(10**17 + n), "state": {"type": "s", "n": n, "ext": {"k": "v" * 40}},
              "tasks": [{"task_id": t, "done": t % 2 == 0} for t in range(5)]} for n in range(50)]


def python_reference_us(rounds: int = 9) -> float:
    """CPU µs of 20 JSON round trips of a fixed 50-service document (median of `rounds`)."""
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(20):
            json.loads(json.dumps(_DOCUMENT))
        samples.append((time.process_time() - started) * 1e6)
    return round(statistics.median(samples), 1)
