"""GPU slots end to end, on a machine without GPUs.

One `codabench-worker run` with 3 slots of one GPU each serves 4 submissions
sent through Celery by the Codabench stand-in. The GPUs are simulated where the
worker and the engine meet real NVIDIA software:
  - the worker finds them with `nvidia-smi` (tests/gpu_sim/bin/nvidia-smi
    answers the worker's exact query with 4 GPUs; NVML is not installed here,
    so the worker takes its fallback path);
  - a second, real dockerd (tests/gpu_sim/start-gpu-dockerd.sh) has a stand-in
    `nvidia-container-runtime-hook` on its PATH, so it accepts the nvidia
    device requests that `docker run --gpus` makes and runs the hook at each
    container start; the hook records the devices the runtime was handed.

Asserts: 3 jobs run at once, each in a container created with its own slot's
GPU (device request, NVIDIA_VISIBLE_DEVICES, labels), the admin's IPC mode and
extra mount; the 4th message waits in the queue (prefetch = slots) until a slot
frees; every submission finishes. With a stand-in NVML (tests/gpu_sim/fake_nvml.cc)
instead of nvidia-smi, the slot's GPU use reaches the job's log line, its output
`metadata` and the metrics.

Run: /usr/bin/python3 -m unittest tests/e2e/test_gpu_slots.py -v (as root).
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402
from harness import missing, summarize, wait_for_status, wait_until  # noqa: E402

DATA = HERE / "data"
GPU_SIM = ROOT / "tests" / "gpu_sim"
FINAL = {"Finished", "Failed"}
GPU_COUNT = 4


def sim_uuid(i):
    """The UUID tests/gpu_sim/bin/nvidia-smi gives GPU i."""
    return f"GPU-{i:08d}-0000-0000-0000-{i:012d}"


class GpuSlotsTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        harness.require_worker_and_rabbitmq()
        if os.geteuid() != 0:
            missing("the simulated GPU engine needs root (a second dockerd)")
        if not shutil.which("dockerd") or not shutil.which("containerd"):
            missing("dockerd/containerd not installed (scripts/setup)")
        cls.had_docker0 = Path("/sys/class/net/docker0").exists()
        # A short path: unix socket paths under it must stay under 108 bytes.
        cls.sim_dir = tempfile.mkdtemp(prefix="cwgpu-", dir="/tmp")
        start = subprocess.run([str(GPU_SIM / "start-gpu-dockerd.sh"), cls.sim_dir],
                               capture_output=True, text=True, timeout=120)
        if start.returncode != 0:
            shutil.rmtree(cls.sim_dir, ignore_errors=True)
            raise AssertionError(f"the simulated GPU engine did not start:\n{start.stderr}")
        cls.socket = start.stdout.strip()
        cls.docker_env = dict(os.environ, DOCKER_HOST=cls.socket)
        images = subprocess.run([str(ROOT / "scripts" / "make-test-images")],
                                env=dict(os.environ, CONTAINER_SOCKET=cls.socket),
                                capture_output=True, text=True, timeout=300)
        if images.returncode != 0:
            cls.tearDownClass()
            raise AssertionError(f"could not import the test image:\n{images.stderr}")
        cls.zips = {name: harness.make_zip(DATA / name) for name in (
            "scoring_program", "reference_data")}

    @classmethod
    def tearDownClass(cls):
        subprocess.run([str(GPU_SIM / "stop-gpu-dockerd.sh"), cls.sim_dir],
                       capture_output=True, timeout=120)
        shutil.rmtree(cls.sim_dir, ignore_errors=True)
        # The main engine's bridge must survive the second daemon.
        if cls.had_docker0 and not Path("/sys/class/net/docker0").exists():
            raise AssertionError("the simulated GPU engine removed the host's docker0 bridge")

    def docker(self, *args):
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60,
                              env=self.docker_env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout

    def node_containers(self, running_only):
        """The node's job containers (not its slots' network holders)."""
        out = self.docker("ps", *([] if running_only else ["-a"]), "--no-trunc",
                          "--filter", f"label=org.codabench.node={self.nodename}",
                          "--format", '{{.ID}} {{.Label "org.codabench.network-holder"}}')
        return [line.split()[0] for line in out.splitlines()
                if line.strip() and len(line.split()) == 1]

    def inspect(self, ids):
        return json.loads(self.docker("inspect", *ids)) if ids else []

    def hook_records(self):
        path = Path(self.sim_dir) / "hook.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def setUp(self):
        self.vhost, self.site = harness.fresh_site(self)
        self.nodename = f"gpu-slots-{uuid.uuid4().hex[:8]}@test"
        self.eval_dir = tempfile.mkdtemp(prefix="cw-eval-")
        self.addCleanup(shutil.rmtree, self.eval_dir, True)
        Path(self.eval_dir, "weights.txt").write_text("organizer data\n")

    def test_three_gpu_slots_run_three_jobs_at_once_and_the_fourth_waits(self):
        worker = harness.Worker(self.vhost, args=["--nodename", self.nodename], env={
            "CONTAINER_SOCKET": self.socket,
            "PATH": f"{GPU_SIM / 'bin'}:{os.environ.get('PATH', '')}",
            "CW_GPU_SIM_COUNT": str(GPU_COUNT),
            "GPUS_PER_SLOT": "1",
            "WORKER_SLOTS": "3",
            "GPU_DRIVER": "nvidia",
            "CONTAINER_IPC": "host",
            "EXTRA_MOUNTS": f"{self.eval_dir}:/eval-program:ro",
        })
        self.started = time.time()
        worker.start()
        self.addCleanup(worker.stop)
        # The program reads the organizer's mount, then sleeps long enough for
        # the three slots to be seen busy together.
        program = harness.make_zip(DATA / "slow_submission", overrides={
            "metadata.yaml": "command: cat /eval-program/weights.txt && "
                             "echo \"gpus=$NVIDIA_VISIBLE_DEVICES\" && sh run.sh 10\n"})
        ids = []
        for _ in range(4):
            created = self.site.create_submission(
                submission=program, scoring_program=self.zips["scoring_program"],
                reference_data=self.zips["reference_data"], execution_time_limit=120)
            ids.append(created["id"])

        running = wait_until(lambda: (lambda c: c if len(c) == 3 else None)(
            self.node_containers(running_only=True)), 60, message="3 running job containers")
        # While the three run, the fourth job is still a message in the queue:
        # the worker only asks for as many messages as it has free slots.
        counts = harness.queue_counts(self.vhost)
        self.assertEqual(counts["messages_ready"], 1, counts)
        self.assertEqual(counts["messages_unacknowledged"], 3, counts)
        self.assertEqual(len(self.node_containers(running_only=True)), 3)

        seen = {}
        for c in self.inspect(running):
            labels = c["Config"]["Labels"]
            slot = labels["org.codabench.slot"]
            gpu = sim_uuid(int(slot))
            self.assertEqual(labels["org.codabench.gpus"], gpu)
            self.assertEqual(labels["org.codabench.node"], self.nodename)
            requests = c["HostConfig"]["DeviceRequests"]
            self.assertEqual(len(requests), 1, requests)
            self.assertEqual(requests[0]["Driver"], "nvidia")
            self.assertEqual(requests[0]["DeviceIDs"], [gpu])
            self.assertIn(f"NVIDIA_VISIBLE_DEVICES={gpu}", c["Config"]["Env"])
            self.assertEqual(c["HostConfig"]["IpcMode"], "host")
            self.assertTrue(any(m["Destination"] == "/eval-program" and not m["RW"]
                                for m in c["Mounts"]), c["Mounts"])
            seen[slot] = labels["org.codabench.submission"]
        self.assertEqual(sorted(seen), ["0", "1", "2"])  # one job per slot
        self.assertEqual(len(set(seen.values())), 3)

        records = [wait_for_status(self.site, sid, FINAL, 180, worker=worker) for sid in ids]
        for record in records:
            self.assertEqual(record["status"], "Finished", summarize(record))

        # Every container of every job (4 predictions, 4 scorings) went
        # through the runtime with exactly its slot's GPU. The containers are
        # gone by now; the engine's create events still carry their labels.
        events = self.docker("events", "--since", str(int(self.started) - 5), "--until",
                             str(int(time.time()) + 1), "--filter", "type=container",
                             "--filter", "event=create", "--filter",
                             f"label=org.codabench.node={self.nodename}",
                             "--format", "{{json .}}")
        slot_of = {}
        for line in events.splitlines():
            e = json.loads(line)
            if "org.codabench.network-holder" in e["Actor"]["Attributes"]:
                continue  # a slot's network holder, not a job's
            slot_of[e["Actor"]["ID"]] = e["Actor"]["Attributes"]["org.codabench.slot"]
        self.assertEqual(len(slot_of), 8, events)
        hooks = [r for r in self.hook_records() if r.get("id") in slot_of]
        self.assertEqual(len(hooks), 8, self.hook_records())
        slots_used = set()
        for h in hooks:
            slot = slot_of[h["id"]]
            slots_used.add(slot)
            self.assertEqual(h["visible_devices"], sim_uuid(int(slot)))
        self.assertEqual(slots_used, {"0", "1", "2"})  # GPU 3 is in no slot
        self.assertIn("GPU 3 is in no slot", worker.stderr_text())

        # The program saw its GPU and the organizer's files.
        stdout = "".join(m["data"].get("message", "") for r in records for m in r["ws_messages"]
                         if m.get("data"))
        self.assertIn("organizer data", stdout)
        self.assertIn("gpus=GPU-0000000", stdout)


    def test_gpu_use_reaches_the_log_the_metadata_and_the_metrics(self):
        # NVML here is a stand-in (tests/gpu_sim/fake_nvml.cc, built beside
        # the worker) loaded through LD_LIBRARY_PATH: two GPUs, GPU 0 with
        # 1 GiB in use and 30% busy, GPU 1 with 2 GiB and 60%. The worker
        # discovers them through it and samples them; one slot owns GPU 0.
        fake = Path(os.environ.get("CW_FAKE_NVML") or Path(harness.worker_binary()).resolve()
                    .parent.parent.parent / "tools" / "libcw_fake_nvml.so")
        if not fake.exists():
            missing(f"the stand-in NVML is not built ({fake}; target cw_fake_nvml)")
        lib_dir = tempfile.mkdtemp(prefix="cw-nvml-")
        self.addCleanup(shutil.rmtree, lib_dir, True)
        os.symlink(fake, os.path.join(lib_dir, "libnvidia-ml.so.1"))
        port = harness.free_port()
        worker = harness.Worker(self.vhost, args=["--nodename", self.nodename], env={
            "CONTAINER_SOCKET": self.socket,
            "LD_LIBRARY_PATH": lib_dir,
            "GPUS_PER_SLOT": "1",
            "WORKER_SLOTS": "1",
            "GPU_DRIVER": "nvidia",
            "METRICS_ADDRESS": f"127.0.0.1:{port}",
        })
        worker.start()
        self.addCleanup(worker.stop)
        # Long enough for a few of the sampler's one-second rounds.
        program = harness.make_zip(DATA / "slow_submission",
                                   overrides={"metadata.yaml": "command: sh run.sh 4\n"})
        created = self.site.create_submission(
            submission=program, scoring_program=self.zips["scoring_program"],
            reference_data=self.zips["reference_data"], execution_time_limit=120)
        record = wait_for_status(self.site, created["id"], FINAL, 180, worker=worker)
        self.assertEqual(record["status"], "Finished", summarize(record))

        zipped = self.site.object_bytes(record["keys"]["prediction_result"])
        with zipfile.ZipFile(io.BytesIO(zipped)) as z:
            metadata = z.read("metadata").decode()
        self.assertIn("gpuPeakMemoryBytes: 1073741824\n", metadata)
        self.assertIn("gpuMeanUtilization: 30\n", metadata)
        self.assertIn("exitCode: 0\n", metadata)
        fake0 = "GPU-fa4e0000-0000-0000-0000-000000000000"
        self.assertRegex(worker.stderr_text(),
                         r"the submission ran [0-9.]+ s: [^\n]*; GPU 0 while the programs ran: "
                         r"peak memory 1024 MiB, utilisation 30% on average")

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        self.assertIn('codabench_worker_gpu_utilization_percent{slot="0",gpu="0",uuid="'
                      + fake0 + '"} 30\n', text)
        self.assertIn('codabench_worker_gpu_memory_used_bytes{slot="0",gpu="0",uuid="'
                      + fake0 + '"} 1073741824\n', text)
        self.assertNotIn('gpu="1"', text)  # in no slot: not this worker's to show
        self.assertIn('codabench_worker_job_gpu_peak_memory_bytes_count{stage="prediction"} 1\n',
                      text)
        self.assertIn('codabench_worker_job_gpu_utilization_percent_sum{stage="prediction"} 30\n',
                      text)

    def doctor(self, **env):
        base = {
            "CONTAINER_SOCKET": self.socket,
            "PATH": f"{GPU_SIM / 'bin'}:{os.environ.get('PATH', '')}",
            "CW_GPU_SIM_COUNT": str(GPU_COUNT),
            "BROKER_URL": self.vhost,
            "HOST_DIRECTORY": self.eval_dir,
        }
        base.update(env)
        proc = subprocess.run([os.path.abspath(harness.worker_binary()), "doctor", "--image", harness.BUSYBOX_IMAGE],
                              env=dict(os.environ, **base), capture_output=True, text=True,
                              timeout=180, cwd=self.eval_dir)
        return proc.returncode, proc.stdout + proc.stderr

    def test_doctor_on_a_healthy_gpu_host(self):
        code, out = self.doctor(GPUS_PER_SLOT="1", GPU_DRIVER="nvidia")
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"ok +engine +Docker ")
        self.assertRegex(out, r"ok +gpus +4 GPUs\n +0 NVIDIA Simulated GPU \(" + sim_uuid(0))
        self.assertRegex(out, r"ok +slots +4 slots")
        self.assertIn(f"slot 3: GPU 3 ({sim_uuid(3)})", out)
        # nvidia-smi ran in a container given slot 0's GPU, and saw only it.
        self.assertRegex(out, r"ok +gpu runtime +slot 0's container sees 1 GPU\(s\) through the "
                              r"nvidia driver: GPU 0: NVIDIA Simulated GPU \(UUID: "
                              + sim_uuid(0) + r"\)")
        self.assertRegex(out, r"ok +host directory +.* the engine sees the same folder")
        self.assertRegex(out, r"ok +broker +logged in to amqp://")
        self.assertIn("ready to serve", out)

    def test_doctor_names_each_problem_and_what_to_do(self):
        bad_broker = self.vhost.replace("guest:guest", "guest:pw-7f3a-not-this")
        self.assertNotEqual(bad_broker, self.vhost)
        code, out = self.doctor(BROKER_URL=bad_broker, GPU_DRIVER="cdi", USE_GPU="True",
                                HOST_DIRECTORY="/proc/no-such-dir")
        self.assertEqual(code, 1, out)
        # This engine (20.10) has no CDI: the probe container cannot start.
        self.assertRegex(out, r"FAIL +gpu runtime +a container with slot 0's GPUs did not start: "
                              r".*could not select device driver \"cdi\"")
        self.assertIn("-> generate the CDI specs", out)
        self.assertRegex(out, r"FAIL +host directory +cannot write to /proc/no-such-dir")
        self.assertRegex(out, r"FAIL +broker +amqp://guest:\*\*\*@.*refused the login")
        self.assertNotIn("pw-7f3a", out)  # the password is never printed
        self.assertIn("3 problem(s) to fix", out)


if __name__ == "__main__":
    unittest.main()
