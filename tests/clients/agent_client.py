#!/usr/bin/env python3
"""An outside client of agentd: Python grpcio with code generated from proto/ at run time.

Usage: agent_client.py PROTO_DIR SOCKET

It connects the way any Python program would (grpc.insecure_channel("unix://" + SOCKET),
default channel options) and drives the agent.v1 API: version, list, create, start, wait,
logs, inspect, remove, the event stream of that container, 10 concurrent creates, a
named volume shared by two containers (VolumeService), and the structured error details
(google.rpc.Status, read with grpcio-status) of a reservation larger than the node, a
refused flag and a start that failed.
Exits 0 when every check holds; otherwise prints what failed and exits 1.
"""

import concurrent.futures
import glob
import os
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

TIMEOUT = 30  # seconds, for every unary call and for the event follower


def fail(msg):
    print(f"agent_client: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def generate(proto_dir, out):
    """Generates the agent.v1 messages and stubs from proto_dir into out."""
    protos = sorted(os.path.relpath(p, proto_dir) for p in glob.glob(os.path.join(proto_dir, "agent/v1/*.proto")))
    check(protos, f"no agent/v1/*.proto under {proto_dir}")
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir, f"--python_out={out}", f"--grpc_python_out={out}"]
    r = subprocess.run(cmd + protos, capture_output=True, text=True)
    check(r.returncode == 0, f"grpc_tools.protoc failed: {r.stderr}")
    sys.path.insert(0, out)


class Follower(threading.Thread):
    """Follows SystemService/Events and keeps (action, id) of every event."""

    def __init__(self, stub, pb):
        super().__init__(daemon=True)
        self.call = stub.Events(pb.EventsRequest(since=0, follow=True), timeout=TIMEOUT * 4)
        self.seen = []
        self.cond = threading.Condition()
        self.error = None

    def run(self):
        try:
            for e in self.call:
                with self.cond:
                    self.seen.append((e.action, e.id))
                    self.cond.notify_all()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.error = f"{e.code().name}: {e.details()}"
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, cid, actions):
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while True:
                got = [a for (a, i) in self.seen if i == cid]
                if got == actions or self.error or time.monotonic() > deadline:
                    return got
                self.cond.wait(1)


def main():
    if len(sys.argv) != 3:
        fail("usage: agent_client.py PROTO_DIR SOCKET")
    proto_dir, sock = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="agent-py-") as out:
        generate(proto_dir, out)
        from agent.v1 import container_pb2 as cpb
        from agent.v1 import container_pb2_grpc as cgrpc
        from agent.v1 import system_pb2 as spb
        from agent.v1 import system_pb2_grpc as sgrpc
        from agent.v1 import volume_pb2 as vpb
        from agent.v1 import volume_pb2_grpc as vgrpc
        from agent.v1 import network_pb2 as npb
        from agent.v1 import network_pb2_grpc as ngrpc

        # Default options: the channel sends whatever :authority grpcio picks for a unix target.
        with grpc.insecure_channel("unix://" + sock) as ch:
            run(ch, cpb, cgrpc.ContainerServiceStub(ch), spb, sgrpc.SystemServiceStub(ch))
            volumes(cpb, cgrpc.ContainerServiceStub(ch), vpb, vgrpc.VolumeServiceStub(ch))
            fixed_ip(cpb, cgrpc.ContainerServiceStub(ch), npb, ngrpc.NetworkServiceStub(ch))
            details(cpb, cgrpc.ContainerServiceStub(ch), spb, sgrpc.SystemServiceStub(ch))
    print("agent_client: ok")


def run(ch, cpb, containers, spb, system):
    v = system.Version(spb.VersionRequest(), timeout=TIMEOUT)
    check(v.api_version == "agent.v1", f"Version: api_version {v.api_version!r}")
    print(f"agent_client: agent {v.version} ({v.api_version}), grpcio {grpc.__version__}")

    before = containers.List(cpb.ListContainersRequest(all=True), timeout=TIMEOUT).containers
    check(before == [], f"a fresh agent lists no containers, got {[c.name for c in before]}")

    events = Follower(system, spb)
    events.start()

    spec = cpb.ContainerSpec(
        name="py-hello", image="local/busybox", command=["sh", "-c", "echo hello-from-python; sleep 1"]
    )
    cid = containers.Create(cpb.CreateContainerRequest(spec=spec), timeout=TIMEOUT).id
    check(len(cid) == 64, f"Create: id {cid!r}")
    listed = containers.List(cpb.ListContainersRequest(all=True), timeout=TIMEOUT).containers
    check([(c.id, c.name) for c in listed] == [(cid, "py-hello")], f"List after create: {listed}")
    check(listed[0].state == cpb.CONTAINER_STATE_CREATED, f"state after create: {listed[0].state}")

    containers.Start(cpb.StartContainerRequest(id=cid), timeout=TIMEOUT)
    w = containers.Wait(cpb.WaitContainerRequest(id=cid), timeout=TIMEOUT)
    check((w.exit_code, w.error) == (0, ""), f"Wait: exit {w.exit_code} {w.error!r}")

    logs = b"".join(e.data for e in containers.Logs(cpb.LogsRequest(id=cid), timeout=TIMEOUT))
    check(logs == b"hello-from-python\n", f"Logs: {logs!r}")
    info = containers.Inspect(cpb.InspectContainerRequest(id="py-hello"), timeout=TIMEOUT).container
    check((info.id, info.state, info.exit_code) == (cid, cpb.CONTAINER_STATE_EXITED, 0), f"Inspect: {info}")

    containers.Remove(cpb.RemoveContainerRequest(id=cid), timeout=TIMEOUT)
    got = events.wait_for(cid, ["create", "start", "die", "destroy"])
    check(got == ["create", "start", "die", "destroy"], f"Events of {cid[:12]}: {got} ({events.error})")
    print(f"agent_client: events {got}")

    # Ten creates at once, from ten threads on the one channel: ten distinct containers.
    def create(i):
        s = cpb.ContainerSpec(name=f"py-par-{i}", image="local/busybox", command=["true"], network_mode="none")
        return containers.Create(cpb.CreateContainerRequest(spec=s), timeout=TIMEOUT).id

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(create, range(10)))
    check(len(set(ids)) == 10, f"10 concurrent creates gave {len(set(ids))} distinct IDs: {ids}")
    listed = containers.List(cpb.ListContainersRequest(all=True), timeout=TIMEOUT).containers
    check(sorted(c.id for c in listed) == sorted(ids), f"List after 10 creates: {[c.name for c in listed]}")
    for i in ids:
        containers.Remove(cpb.RemoveContainerRequest(id=i, force=True), timeout=TIMEOUT)
    left = containers.List(cpb.ListContainersRequest(all=True), timeout=TIMEOUT).containers
    check(left == [], f"List after removing all: {[c.name for c in left]}")
    events.call.cancel()
    events.join(5)
    print("agent_client: 10 concurrent creates, distinct IDs, all removed")


def fixed_ip(cpb, containers, npb, nets):
    """Ten creates asking for one fixed address at once: one gets it, nine ALREADY_EXISTS."""
    subnet = f"10.241.{os.getpid() % 200}.0/24"
    ip = subnet.replace(".0/24", ".7")
    nets.Create(npb.CreateNetworkRequest(name="pynet", subnet=subnet), timeout=TIMEOUT)

    def create(i):
        s = cpb.ContainerSpec(name=f"py-ip-{i}", image="local/busybox", command=["true"], network_mode="pynet", ip=ip)
        try:
            return ("ok", containers.Create(cpb.CreateContainerRequest(spec=s), timeout=TIMEOUT).id)
        except grpc.RpcError as e:
            return (e.code(), e.details())

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        got = list(pool.map(create, range(10)))
    won = [v for k, v in got if k == "ok"]
    lost = [(k, d) for k, d in got if k != "ok"]
    check(len(won) == 1, f"10 concurrent creates for {ip}: {len(won)} won: {got}")
    check(all(k == grpc.StatusCode.ALREADY_EXISTS and ip in d for k, d in lost), f"the others: {lost}")
    info = containers.Inspect(cpb.InspectContainerRequest(id=won[0]), timeout=TIMEOUT).container
    check(info.spec.ip == ip, f"Inspect: spec.ip {info.spec.ip!r}")
    containers.Remove(cpb.RemoveContainerRequest(id=won[0], force=True), timeout=TIMEOUT)
    nets.Remove(npb.RemoveNetworkRequest(name="pynet"), timeout=TIMEOUT)
    print(f"agent_client: fixed ip {ip}: 1 of 10 concurrent creates, 9 ALREADY_EXISTS")


def volumes(cpb, containers, vpb, vols):
    """A scheduler's use of a named volume: made, shared by two containers, refused removal while used."""
    v = vols.Create(vpb.CreateVolumeRequest(name="pyvol", labels={"team": "py"}), timeout=TIMEOUT)
    check((v.name, v.driver, v.scope) == ("pyvol", "local", "local"), f"Volume Create: {v}")
    check(v.mountpoint.endswith("/volumes/pyvol/_data"), f"Volume mountpoint: {v.mountpoint}")

    def run_with(cmd):
        s = cpb.ContainerSpec(image="local/busybox", command=["sh", "-c", cmd], network_mode="none", volumes=["pyvol:/d"])
        cid = containers.Create(cpb.CreateContainerRequest(spec=s), timeout=TIMEOUT).id
        containers.Start(cpb.StartContainerRequest(id=cid), timeout=TIMEOUT)
        w = containers.Wait(cpb.WaitContainerRequest(id=cid), timeout=TIMEOUT)
        check(w.exit_code == 0, f"{cmd!r}: exit {w.exit_code} {w.error!r}")
        return cid

    first = run_with("echo shared > /d/f")
    containers.Remove(cpb.RemoveContainerRequest(id=first), timeout=TIMEOUT)
    second = run_with("grep -q shared /d/f")
    try:
        vols.Remove(vpb.RemoveVolumeRequest(name="pyvol"), timeout=TIMEOUT)
        fail("Volume Remove while a container uses it succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and "volume is in use" in e.details(), f"{e}")
    containers.Remove(cpb.RemoveContainerRequest(id=second), timeout=TIMEOUT)
    vols.Remove(vpb.RemoveVolumeRequest(name="pyvol"), timeout=TIMEOUT)
    try:
        vols.Create(vpb.CreateVolumeRequest(name="bad name"), timeout=TIMEOUT)
        fail("Volume Create with a bad name succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "bad name" in e.details(), f"{e}")
    left = vols.List(vpb.ListVolumesRequest(), timeout=TIMEOUT).volumes
    check(left == [], f"volumes left: {[x.name for x in left]}")
    print("agent_client: volumes shared, removal refused while in use, removed")


def unpack(err, kind):
    """The detail of type kind in the google.rpc.Status of a failed call, or None."""
    st = rpc_status.from_call(err)
    check(st is not None, f"{err.code().name} {err.details()!r}: no grpc-status-details-bin")
    check(st.code == err.code().value[0] and st.message == err.details(), f"details disagree: {st}")
    for d in st.details:
        if d.Is(kind.DESCRIPTOR):
            m = kind()
            d.Unpack(m)
            return m
    return None


def refused(call, code):
    try:
        call()
    except grpc.RpcError as e:
        check(e.code() == code, f"want {code.name}, got {e.code().name}: {e.details()}")
        return e
    fail(f"want {code.name}, the call succeeded")


def details(cpb, containers, spb, system):
    """Errors as structured details: the shortfall, the refused flag, the exit code."""
    info = system.Info(spb.InfoRequest(), timeout=TIMEOUT)
    free_cpus = info.allocatable_cpus - info.allocated_cpus
    free_mem = info.allocatable_memory - info.allocated_memory
    # More than the node: every CPU it has (the test's agent reserves all but half of one
    # for the system; more than the host has is refused as invalid) and 3 GiB + 12345 bytes
    # over the allocatable memory.
    check(info.allocatable_cpus < info.capacity_cpus, f"Info: {info.allocatable_cpus} of {info.capacity_cpus} CPUs")
    want_cpus, want_mem = info.capacity_cpus, info.allocatable_memory + (3 << 30) + 12345
    res = cpb.Resources(cpus=want_cpus, memory=want_mem)
    spec = cpb.ContainerSpec(name="py-big", image="local/busybox", command=["true"], network_mode="none", resources=res)
    e = refused(lambda: containers.Create(cpb.CreateContainerRequest(spec=spec), timeout=TIMEOUT),
                grpc.StatusCode.RESOURCE_EXHAUSTED)
    check("short by" in e.details(), f"the message is kept: {e.details()!r}")
    ei = unpack(e, error_details_pb2.ErrorInfo)
    check(ei is not None and (ei.reason, ei.domain) == ("INSUFFICIENT_ALLOCATABLE", "node-agent"), f"ErrorInfo {ei}")
    short_cpus = info.allocated_cpus + want_cpus - info.allocatable_cpus
    short_mem = info.allocated_memory + want_mem - info.allocatable_memory
    check(abs(float(ei.metadata["cpus_short"]) - short_cpus) < 1e-6, f"cpus_short {ei.metadata} want {short_cpus}")
    check(int(ei.metadata["memory_short_bytes"]) == short_mem, f"memory_short_bytes {ei.metadata} want {short_mem}")
    check(int(ei.metadata["memory_requested_bytes"]) == want_mem, f"memory_requested_bytes {ei.metadata}")
    check(abs(float(ei.metadata["cpus_free"]) - free_cpus) < 1e-6, f"cpus_free {ei.metadata} want {free_cpus}")
    check(int(ei.metadata["memory_free_bytes"]) == free_mem, f"memory_free_bytes {ei.metadata} want {free_mem}")
    qf = unpack(e, error_details_pb2.QuotaFailure)
    check(qf is not None and [v.subject for v in qf.violations] == ["cpus", "memory"], f"QuotaFailure {qf}")
    left = containers.List(cpb.ListContainersRequest(all=True), timeout=TIMEOUT).containers
    check(left == [], f"a refused create left {[c.name for c in left]}")
    print(f"agent_client: details: short by {ei.metadata['cpus_short']} CPUs and {ei.metadata['memory_short_bytes']} bytes")

    bad = cpb.ContainerSpec(name="py-bad", image="local/busybox", command=["true"], network_mode="none", shm_size=-1)
    e = refused(lambda: containers.Create(cpb.CreateContainerRequest(spec=bad), timeout=TIMEOUT),
                grpc.StatusCode.INVALID_ARGUMENT)
    br = unpack(e, error_details_pb2.BadRequest)
    check(br is not None and [v.field for v in br.field_violations] == ["--shm-size"], f"BadRequest {br}")

    s = cpb.ContainerSpec(name="py-noexec", image="local/busybox", command=["/no/such/binary"], network_mode="none")
    cid = containers.Create(cpb.CreateContainerRequest(spec=s), timeout=TIMEOUT).id
    e = refused(lambda: containers.Start(cpb.StartContainerRequest(id=cid), timeout=TIMEOUT),
                grpc.StatusCode.FAILED_PRECONDITION)
    ei = unpack(e, error_details_pb2.ErrorInfo)
    check(ei is not None and ei.reason == "START_FAILED" and ei.metadata["exit_code"] == "127", f"ErrorInfo {ei}")
    containers.Remove(cpb.RemoveContainerRequest(id=cid, force=True), timeout=TIMEOUT)
    print("agent_client: details: BadRequest --shm-size, START_FAILED exit_code 127")


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as e:
        fail(f"RPC failed: {e.code().name}: {e.details()}")
