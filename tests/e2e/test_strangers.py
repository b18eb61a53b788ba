"""Strangers never meet: what one job's programs leave or run is out of another's reach.

A public queue runs the code of strangers one after the other on a slot and
side by side on a host (README "Security"). Through the stand-in, a real
RabbitMQ and a real Docker engine:
- a participant's program writes markers into its /etc/hosts and
  /etc/resolv.conf; the next participant's program, and the organizers'
  scoring program that scores the first, see none of them, and each program
  has a hostname of its own;
- with two slots, one job's program serves a port while another's knocks on
  its address, its neighbours' and the network's gateway: it reaches nothing.

Run: /usr/bin/python3 -m unittest tests/e2e/test_strangers.py -v (needs what
test_queue_worker.py needs).
"""

import os
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402
from harness import summarize, wait_for_status  # noqa: E402

DATA = HERE / "data"
FINAL = {"Finished", "Failed"}

# What each program prints of the namespace it is in.
LOOK = ("echo \"hostname=$(hostname)\"\n"
        "echo \"hosts_markers=$(grep -c STRANGER /etc/hosts)\"\n"
        "echo \"resolv_markers=$(grep -c STRANGER /etc/resolv.conf)\"\n")


def looked(text):
    """The key=value lines LOOK printed, as a dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("hostname", "hosts_markers", "resolv_markers"):
            out[key] = value.strip()
    return out


class StrangersTest(harness.WorkerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.require_services()
        cls.reference = harness.make_zip(DATA / "reference_data")

    def code_submission(self, script):
        return harness.make_zip(DATA / "code_submission", overrides={
            "metadata.yaml": "command: sh /app/program/run.sh\n", "model.sh": None,
            "run.sh": script})

    def scoring_program(self, script):
        return harness.make_zip(DATA / "scoring_program", overrides={"score.sh": script})

    def submit(self, submission, scoring):
        created = self.site.create_submission(submission=submission, scoring_program=scoring,
                                              reference_data=self.reference)
        self.submission_ids.append(created["id"])
        return created

    def live_output(self, sid):
        """What the submission's programs sent over the websocket so far."""
        return "".join(m["data"].get("message", "") for m in self.site.submission(sid)["ws_messages"]
                       if m.get("data"))

    def wait_final(self, sid, timeout=120):
        record = wait_for_status(self.site, sid, FINAL, timeout, worker=self.worker)
        self.assertEqual(record["status"], "Finished", summarize(record))
        return record

    def test_what_a_program_writes_into_its_namespace_reaches_no_other_program(self):
        self.start_worker()
        attacker = self.code_submission(
            LOOK +
            "echo '6.6.6.6 pypi.org localhost STRANGER' >> /etc/hosts\n"
            "echo 'nameserver 6.6.6.6 # STRANGER' >> /etc/resolv.conf\n"
            "echo \"after_write=$(grep -c STRANGER /etc/hosts)\"\n"
            "printf '2\\n4\\n6\\n' > /app/output/predictions.txt\n")
        scoring = self.scoring_program(
            LOOK + "echo '{\"accuracy\": 1.0, \"count\": 3}' > /app/output/scores.json\n")
        a = self.wait_final(self.submit(attacker, scoring)["id"])
        a_program = a["logs"]["prediction_stdout"]
        self.assertIn("after_write=1", a_program, "the write itself must work: " + a_program)
        a_scoring = looked(a["logs"]["scoring_stdout"])

        neighbour = self.code_submission(LOOK + "printf '2\\n4\\n6\\n' > /app/output/predictions.txt\n")
        b = self.wait_final(self.submit(neighbour, scoring)["id"])
        b_program = looked(b["logs"]["prediction_stdout"])

        for who, seen in (("the attacker's own scoring program", a_scoring),
                          ("the next participant's program", b_program)):
            self.assertEqual(seen.get("hosts_markers"), "0", f"{who}: {seen}")
            self.assertEqual(seen.get("resolv_markers"), "0", f"{who}: {seen}")
        hostnames = [looked(a_program).get("hostname"), a_scoring.get("hostname"),
                     b_program.get("hostname")]
        self.assertTrue(all(hostnames), hostnames)
        self.assertEqual(len(set(hostnames)), 3, f"a hostname served two programs: {hostnames}")

    def test_programs_of_two_slots_cannot_reach_each_other(self):
        self.start_worker(WORKER_SLOTS="2")
        # The server serves its token for 30 s, long enough for the probe.
        token = "SERVED-" + harness.secrets.token_hex(6)
        server = self.code_submission(
            f"ip -4 addr show eth0 | sed -n 's/.*inet \\([0-9.]*\\).*/serving on \\1/p'\n"
            f"end=$(( $(date +%s) + 30 ))\n"
            f"while [ $(date +%s) -lt $end ]; do echo {token} | nc -l -p 8080 -w 2; done\n"
            "printf '2\\n4\\n6\\n' > /app/output/predictions.txt\n")
        scoring = self.scoring_program("echo '{\"accuracy\": 1.0, \"count\": 3}' > /app/output/scores.json\n")
        s = self.submit(server, scoring)
        server_ip = harness.wait_until(lambda: self.live_output(s["id"]).partition("serving on ")[2]
                                  .split("\n")[0].strip(), 60,
                                  message="the server's program to say where it serves")
        # The probe knows exactly where to knock (the test tells it), and
        # knocks on the addresses next to the server's too.
        base, last = server_ip.rsplit(".", 1)
        targets = sorted({server_ip} |
                         {f"{base}.{n}" for n in range(max(2, int(last) - 3), int(last) + 4)})
        probe = self.code_submission(
            "ip=$(ip -4 addr show eth0 | sed -n 's/.*inet \\([0-9.]*\\).*/\\1/p')\n"
            "echo \"probing from $ip\"\n"
            f"for a in {' '.join(targets)}; do [ \"$a\" = \"$ip\" ] && continue; "
            "got=$(echo | nc -w 2 $a 8080 2>/dev/null); "
            "[ -n \"$got\" ] && echo \"reached $a: $got\"; done\n"
            "echo probe done\n"
            "printf '2\\n4\\n6\\n' > /app/output/predictions.txt\n")
        p = self.wait_final(self.submit(probe, scoring)["id"], timeout=180)
        probe_out = p["logs"]["prediction_stdout"]
        self.assertIn("probe done", probe_out)
        self.assertNotIn(token, probe_out, probe_out)
        self.assertNotIn("reached", probe_out, probe_out)
        probe_ip = probe_out.split("probing from ", 1)[1].split()[0]
        if os.environ.get("CONTAINER_ENGINE_EXECUTABLE") == "podman":
            # Each slot its own network: the server's is another's, which
            # only the holder's routes (and netavark's rules) keep it from.
            self.assertNotEqual(probe_ip.rsplit(".", 1)[0], base, probe_out)
        else:
            # It was on the server's network, beside it.
            self.assertEqual(probe_ip.rsplit(".", 1)[0], base, probe_out)
        self.wait_final(s["id"], timeout=180)


if __name__ == "__main__":
    unittest.main()
