"""Worker processes of a benchmark that runs two builds side by side: each
worker answers requests on its stdin with replies on its stdout, one JSON
document a line (side_by_side.py, mixed_calls.py)."""
import json
import subprocess
import sys


def start(script, *args):
    """A worker running `script` (this Python) with `args`, and the first
    reply it prints, once it is ready."""
    proc = subprocess.Popen([sys.executable, script, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    if not first:
        raise SystemExit(f"the worker {script} {' '.join(args)} did not start")
    return proc, json.loads(first)


def ask(proc, request):
    """The worker's reply to `request`."""
    proc.stdin.write(json.dumps(request) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def stop(procs):
    """Close the workers' input and wait for them to end."""
    for proc in procs:
        proc.stdin.close()
        proc.wait()
