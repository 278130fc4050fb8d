#!/usr/bin/env python3
"""Writes the configuration of the identity benchmarks: every noise filter
kind on (none matching fpolicy-sim's paths, so each is evaluated for every
event) and an identity table with fpolicy-sim's SMB SID and NFS UIDs plus
EXTRA other users (the same table a directory sync builds).

Usage: scripts/identity-config.py OUT EXTRA
Used by scripts/bench-serve.sh (identity) and scripts/ir-per-event.sh.
"""
import sys

out, extra = sys.argv[1], int(sys.argv[2])
with open(out, "w") as f:
    f.write('[filters]\ndrop_temp_files = true\nexclude_paths = ["/scratch/**"]\n')
    f.write('exclude_users = ["svc_backup"]\nexclude_client_ips = ["10.99.0.0/16"]\n')
    f.write('[identity.users]\n')
    f.write('"S-1-5-21-3623811015-3361044348-30300820-1013" = "alice"\n')
    for uid in range(1000, 1007):
        f.write(f'"{uid}" = "nfs{uid}"\n')
    for i in range(extra):
        f.write(f'"S-1-5-21-1004336348-1177238915-682003330-{10_000 + i}" = "user{i:06}"\n')
