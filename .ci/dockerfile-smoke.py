"""Runs deploy/Dockerfile's CMD and HEALTHCHECK with a locally built binary
(ports moved to free loopback ones, the data directory to a temporary one)
and checks that the health check passes while serving and fails after a
graceful stop; also that the files the Dockerfile copies exist.

usage: dockerfile-smoke.py DOCKERFILE BINARY"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

dockerfile, binary = sys.argv[1:3]
text = open(dockerfile).read()


def instruction(name):
    m = re.search(rf"^{name} (\[.*\])\s*$", text, re.M)
    if not m:
        sys.exit(f"{dockerfile}: no exec-form {name}")
    return json.loads(m.group(1))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


for src in re.findall(r"^COPY --from=build /src/(\S+)", text, re.M):
    if not os.path.exists(src):
        sys.exit(f"{dockerfile}: copies {src}, which does not exist")
entrypoint = instruction("ENTRYPOINT")
cmd = instruction("CMD")
health = re.search(r"^HEALTHCHECK .*CMD (\[.*\])\s*$", text, re.M)
if not health:
    sys.exit(f"{dockerfile}: no exec-form HEALTHCHECK")
health = json.loads(health.group(1))
assert entrypoint == ["/usr/local/bin/fpolicy-bridge"] and health[0] == entrypoint[0], (entrypoint, health)

admin, listen = free_port(), free_port()
with tempfile.TemporaryDirectory() as data:
    args = [a.replace("/var/lib/fpolicy-bridge", data).replace("0.0.0.0:9899", f"127.0.0.1:{admin}") for a in cmd]
    assert f"127.0.0.1:{admin}" in args, f"CMD no longer sets the admin address: {cmd}"
    server = subprocess.Popen([binary, *args, "--listen", f"127.0.0.1:{listen}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The health check asks 127.0.0.1:9899 by default; here the moved port.
    check = [binary, *health[1:], "--admin", f"127.0.0.1:{admin}"]
    ok = False
    for _ in range(100):
        if subprocess.run(check, capture_output=True).returncode == 0:
            ok = True
            break
        time.sleep(0.1)
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=30)
    if not ok:
        sys.exit(f"HEALTHCHECK never passed while the CMD served: {server.stderr.read().decode()[-2000:]}")
    assert code == 0, f"CMD exited {code} on SIGTERM"
    after = subprocess.run(check, capture_output=True)
    assert after.returncode == 1, f"HEALTHCHECK passed with nothing serving: {after}"
    assert os.path.isdir(os.path.join(data, "events")), "the CMD's data directory was not used"
print("deploy-checks: Dockerfile CMD served with the built binary, HEALTHCHECK passed, and failed after SIGTERM")
