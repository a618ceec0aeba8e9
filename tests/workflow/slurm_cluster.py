"""A single-node SLURM cluster on this machine, for the tests: its own munged, slurmctld and
slurmd, with state, logs and munge key in a temporary directory, stopped by the process ids this
module started them with.

The configuration goes to /etc/slurm, SLURM's default place, and is removed again at the end:
the Snakemake plugin's job step strips SLURM_* variables (SLURM_CONF among them) before its
inner `srun`, so a configuration anywhere else is not found inside jobs. A configuration there
that this module did not write (a real cluster's) is never replaced: the tests skip instead.

The node offers one GPU as a generic resource backed by /dev/null, so that jobs asking for
`--gpus=1` are scheduled as on a real GPU node and then run on the CPU.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")
PARTITION = "arbench"
SYSTEM_CONF = Path("/etc/slurm")
OURS = "# written by arbench's test cluster (tests/workflow/slurm_cluster.py)\n"
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    missing = [name for name in DAEMONS + CLIENTS if shutil.which(name) is None]
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} not found; .ci/run installs the "
            "Debian packages slurm-wlm and munge)"
        )
    if os.geteuid() != 0:
        return "starting slurmctld and slurmd needs root"
    existing = SYSTEM_CONF / "slurm.conf"
    if existing.exists() and not existing.read_text().startswith(OURS):
        return f"{existing} exists (a real SLURM configuration?); the test cluster leaves it alone"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SlurmCluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = SYSTEM_CONF / "slurm.conf"
        self.gres = SYSTEM_CONF / "gres.conf"
        self.processes: list[subprocess.Popen] = []

    @property
    def env(self) -> dict[str, str]:
        """The environment in which SLURM's commands talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        # munged checks its directories: the socket's must be reachable by everyone, the
        # key's private to the daemon's user.
        self.root.chmod(0o755)
        run, private, logs = self.root / "run", self.root / "munge", self.root / "log"
        for folder, mode in ((run, 0o755), (private, 0o700), (logs, 0o755)):
            folder.mkdir(mode=mode)
            folder.chmod(mode)
        for folder in ("state", "spool"):
            (self.root / folder).mkdir()
        key = private / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        munge_socket = run / "munge.socket"
        self._spawn(
            [
                "munged",
                "--foreground",
                f"--socket={munge_socket}",
                f"--key-file={key}",
                f"--pid-file={private / 'munged.pid'}",
                f"--seed-file={private / 'munged.seed'}",
                f"--log-file={logs / 'munged.log'}",
            ],
            "munged",
        )
        self._wait(munge_socket.exists, "munged did not create its socket", "munged")
        self._write_config(munge_socket)
        self._spawn(["slurmctld", "-D", "-f", str(self.conf)], "slurmctld")
        self._spawn(["slurmd", "-D", "-f", str(self.conf)], "slurmd")
        self._wait(self._node_idle, "the node did not come up idle", "slurmctld", "slurmd")

    def _write_config(self, munge_socket: Path) -> None:
        # slurmd -C describes this machine as slurmd will report it; declaring more than that
        # would drain the node.
        probe = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
        node = probe.stdout.splitlines()[0]
        self.node = node.split()[0].split("=", 1)[1]
        root = self.root
        SYSTEM_CONF.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"""{OURS}ClusterName=arbenchtest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=2
MinJobAge=600
GresTypes=gpu
{node} NodeAddr=127.0.0.1 Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        )
        self.gres.write_text(f"{OURS}NodeName={self.node} Name=gpu File=/dev/null\n")

    def _spawn(self, command: list[str], name: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 (lives with the daemon)
        self.processes.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        )
        log.close()

    def _node_idle(self) -> bool:
        state = subprocess.run(
            ["sinfo", "--noheader", "--format=%T", f"--nodes={self.node}"],
            capture_output=True,
            text=True,
            env=self.env,
        )
        return state.stdout.strip() == "idle"

    def _wait(self, ready, problem: str, *logs: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.stop()
                tails = "\n".join(
                    f"--- {name}:\n{(self.root / 'log' / f'{name}.out').read_text()[-2000:]}"
                    for name in logs
                )
                raise RuntimeError(f"test cluster: {problem}\n{tails}")
            time.sleep(0.2)

    def sbatch(self, *args: str, cwd: Path) -> int:
        result = subprocess.run(
            ["sbatch", "--parsable", f"--partition={PARTITION}", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=cwd,
            check=True,
        )
        return int(result.stdout.strip().split(";")[0])

    def scancel(self, job: int) -> None:
        subprocess.run(["scancel", str(job)], env=self.env, check=True)

    def job_state(self, job: int) -> str:
        shown = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", str(job)],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
        ).stdout
        fields = dict(item.split("=", 1) for item in shown.split() if "=" in item)
        return fields["JobState"]

    def wait(self, job: int, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.job_state(job)) not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"SLURM job {job} still {state} after {timeout} s")
            time.sleep(0.2)
        return state

    def stop(self) -> None:
        """Stop the daemons this cluster started (by their ids), newest first."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        for written in (self.conf, self.gres):
            if written.exists() and written.read_text().startswith(OURS):
                written.unlink()
