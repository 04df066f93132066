#!/usr/bin/env python3
"""Many followers from one outside client process (Python grpcio, default options).

Usage:
  followers.py gen PROTO_DIR OUT            generate the agent.v1 stubs into OUT once
  followers.py follow OUT SOCKET N NAME     follow SystemService/Events N times on one channel

`follow` prints "ready N" once every call is open (the agent answered its headers), then
"heard K" when K of them saw the `die` event of container NAME (or after 90 s), and exits.
A refused call prints "refused CODE DETAILS" instead of counting.
"""

import glob
import os
import subprocess
import sys
import threading

import grpc


def gen(proto_dir, out):
    protos = sorted(os.path.relpath(p, proto_dir) for p in glob.glob(os.path.join(proto_dir, "agent/v1/*.proto")))
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir, f"--python_out={out}", f"--grpc_python_out={out}"]
    r = subprocess.run(cmd + protos, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"protoc failed: {r.stderr}", file=sys.stderr)
        sys.exit(1)


def follow(out, sock, n, name):
    sys.path.insert(0, out)
    from agent.v1 import system_pb2 as spb
    from agent.v1 import system_pb2_grpc as sgrpc

    ch = grpc.insecure_channel("unix://" + sock)
    stub = sgrpc.SystemServiceStub(ch)
    calls = [stub.Events(spb.EventsRequest(since=0, follow=True), timeout=120) for _ in range(n)]
    heard = [False] * n
    opened = threading.Semaphore(0)

    def run(i):
        call = calls[i]
        try:
            call.initial_metadata()
            opened.release()
            for e in call:
                if e.name == name and e.action == "die":
                    heard[i] = True
                    return
        except grpc.RpcError as err:
            opened.release()
            if err.code() != grpc.StatusCode.CANCELLED:
                print(f"refused {err.code().name} {err.details()}", flush=True)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        opened.acquire()
    print(f"ready {n}", flush=True)
    for t in threads:
        t.join(timeout=90)
    print(f"heard {sum(heard)}", flush=True)
    for c in calls:
        c.cancel()
    ch.close()


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], sys.argv[3])
    else:
        follow(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
