"""Ingest benchmark driver for scripts/bench/ingest (see that script for what it measures).

Runs DCMTK storescu against `pulmo serve` (durability on) and against DCMTK storescp, alternating
receivers, RUNS rounds per case; prints one JSON line per run to --results and, at the end,
writes the "## Ingest over DICOM (C-STORE SCP)" section of docs/benchmarks.md.

Usage: ingest_bench.py PULMO_BIN DATA_DIR RUNS DEFAULT_RUNS DOC
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import pydicom

PULMO, DATA, RUNS, DEFAULT_RUNS, DOC = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
DEFAULT_C8_RUNS = int(os.environ.get("DEFAULT_C8_RUNS", "1"))
STORESCU = shutil.which("storescu")
STORESCP = shutil.which("storescp")
WORK = tempfile.mkdtemp(prefix="pulmo-bench-ingest-")
LOG = open(os.path.join(WORK, "bench.log"), "a")


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    """True once something LISTENs on 127.0.0.1:port (read from /proc, so no probe connection
    reaches the receiver: storescp without --fork would count one as an association)."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[1].endswith(want) and f[3] == "0A":
                return True
    return False


def wait_listening(proc, port, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not listening(port):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening; log in {WORK}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not listen on {port} within {timeout} s")
        time.sleep(0.02)


def tool_env(nodelay):
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    return env


# Why run outputs are deleted only at the end: after thousands of files are deleted, ext4
# without a journal (as on these machines) skips each recently deleted inode (~30 s) when it
# allocates a new one, reading inode tables as it goes, which slowed whichever receiver ran next
# by up to 2x. Needs free disk for every run's files (~20 GB at RUNS=5).
KEPT_NOTE = ("Every run's received files are kept until the benchmark ends: deleting thousands of "
             "files between runs made this file system (ext4 without a journal) scan recently deleted "
             "inodes on each file creation for ~30 s, slowing whichever receiver ran next.")


def make_copies(n):
    """n copies of the series, each with new Study/Series/SOP Instance UIDs (a different study
    per copy), so that every instance a receiver gets is new to it."""
    src = sorted(os.path.join(DATA, f) for f in os.listdir(DATA))
    dirs = []
    for k in range(n):
        d = os.path.join(WORK, "data", f"copy{k}")
        os.makedirs(d)
        new = lambda u: "2.25." + str(uuid.UUID(bytes=hashlib.md5(f"{u}/{k}".encode()).digest()).int)
        for i, path in enumerate(src):
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID = new(ds.StudyInstanceUID)
            ds.SeriesInstanceUID = new(ds.SeriesInstanceUID)
            ds.SOPInstanceUID = new(ds.SOPInstanceUID)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(os.path.join(d, f"{i:04d}.dcm"), enforce_file_format=True)
        dirs.append(d)
    return dirs


def files_under(dirs):
    out = []
    for d in dirs:
        for root, _, names in os.walk(d):
            out += [os.path.join(root, n) for n in names]
    return out


def storescu_cmd(port, called, dirs):
    return [STORESCU, "-aet", "BENCH", "-aec", called, "+sd", "+r", "127.0.0.1", str(port)] + dirs


def run_senders(port, called, senders, nodelay, tag):
    """Starts every sender at once; returns the wall time until the last one exits and each
    sender's exit status and time."""
    procs = []
    t0 = time.monotonic()
    for i, dirs in enumerate(senders):
        err = open(os.path.join(WORK, f"storescu-{tag}-{i}.log"), "w")
        procs.append((subprocess.Popen(storescu_cmd(port, called, dirs), env=tool_env(nodelay),
                                       stdout=err, stderr=subprocess.STDOUT), err))
    ends = [None] * len(procs)
    while any(e is None for e in ends):
        for i, (p, _) in enumerate(procs):
            if ends[i] is None and p.poll() is not None:
                ends[i] = time.monotonic() - t0
        time.sleep(0.005)
    wall = max(ends)
    rcs = [p.returncode for p, _ in procs]
    notes = []
    for p, err in procs:
        err.close()
        text = open(err.name).read()
        for line in text.splitlines():
            if line.startswith(("E:", "F:")) and line not in notes:
                notes.append(line)
    return wall, rcs, ends, notes[:6]


def stop(proc, grace):
    """SIGTERM, then SIGKILL if the receiver has not exited within `grace` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_pulmo(case, senders, nodelay):
    d = tempfile.mkdtemp(dir=WORK, prefix="pulmo-")
    port, http = free_port(), free_port()
    cfg = os.path.join(d, "pulmo.toml")
    with open(cfg, "w") as f:
        f.write(f"""[listen]
dicom = "127.0.0.1:{port}"
http = "127.0.0.1:{http}"

[node]
ae_titles = ["PULMO"]
max_associations = 16

[storage]
spool = "{d}/spool"
database = "{d}/pulmo.db"
min_free_mb = 1

[studies]
quiet_seconds = 3600
""")
    log = open(os.path.join(d, "serve.log"), "w")
    proc = subprocess.Popen([PULMO, "serve", "--config", cfg], stdout=log, stderr=subprocess.STDOUT,
                            env=tool_env(False))
    try:
        wait_listening(proc, port, "pulmo serve")
        idle_kb = int(re.search(r"VmRSS:\s+(\d+) kB", open(f"/proc/{proc.pid}/status").read()).group(1))
        wall, rcs, ends, notes = run_senders(port, "PULMO", senders, nodelay, f"pulmo-{case}")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10).read().decode()
        m = lambda name: int(float(re.search(rf"^{name} (\S+)", metrics, re.M).group(1)))
        stored, refused = m("pulmo_instances_stored_total"), m("pulmo_instances_refused_total")
        hwm_kb = int(re.search(r"VmHWM:\s+(\d+) kB", open(f"/proc/{proc.pid}/status").read()).group(1))
    finally:
        stop(proc, grace=60)
        log.close()
    db = sqlite3.connect(f"file:{d}/pulmo.db?mode=ro", uri=True)
    distinct = db.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
    spool_files = len(files_under([f"{d}/spool"]))
    db.close()
    # Run folders stay until the end (see KEPT_NOTE).
    return dict(received=stored, refused=refused, distinct_stored=distinct, spool_files=spool_files,
                wall=wall, rcs=rcs, ends=ends, notes=notes, peak_rss_mb=hwm_kb / 1024, idle_rss_mb=idle_kb / 1024,
                exit=proc.returncode)


def run_storescp(case, senders, nodelay):
    d = tempfile.mkdtemp(dir=WORK, prefix="storescp-")
    out = os.path.join(d, "out")
    os.makedirs(out)
    port = free_port()
    log = open(os.path.join(d, "storescp.log"), "w")
    proc = subprocess.Popen([STORESCP, "+uf", "-od", out, str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env=tool_env(nodelay))
    try:
        wait_listening(proc, port, "storescp")
        wall, rcs, ends, notes = run_senders(port, "STORESCP", senders, nodelay, f"storescp-{case}")
    finally:
        stop(proc, grace=30)
        log.close()
    received = len(files_under([out]))
    return dict(received=received, wall=wall, rcs=rcs, ends=ends, notes=notes)


def main():
    results_path = os.environ.get("INGEST_RESULTS") or os.path.join(WORK, "results.jsonl")
    results = open(results_path, "a")
    series = sorted(os.listdir(DATA))
    n_series = len(series)
    repeats = -(-1000 // n_series)  # the series repeated to at least 1,000 instances
    say(f"making {max(repeats, 8)} copies of {DATA} with new UIDs in {WORK} ...")
    copies = make_copies(max(repeats, 8))
    mean_bytes = statistics.mean(os.path.getsize(f) for f in files_under(copies))
    for f in files_under(copies) + files_under([DATA]):  # page cache warm
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass
    cases = [
        # (key, label, senders (each a list of folders), nodelay, rounds)
        ("distinct", f"1 sender, {repeats} copies of the series with new UIDs ({repeats * n_series} new instances)",
         [copies[:repeats]], True, RUNS),
        ("repeat", f"1 sender, the series folder {repeats}x on one command line ({repeats * n_series} instances, "
                   f"{(repeats - 1) * n_series} of them resent duplicates)",
         [[DATA] * repeats], True, RUNS),
        ("c8", f"8 senders at once, each a different copy ({8 * n_series} new instances)",
         [[c] for c in copies[:8]], True, RUNS),
        ("default", f"1 sender, the series once ({n_series} instances)", [[DATA]], False, DEFAULT_RUNS),
        ("default-c8", f"8 senders at once, each a different copy ({8 * n_series} new instances)",
         [[c] for c in copies[:8]], False, DEFAULT_C8_RUNS),
    ]
    only = os.environ.get("CASES")
    rows = []
    for key, label, senders, nodelay, rounds in cases:
        if only and key not in only.split(","):
            continue
        expected = sum(len(files_under(s)) for s in senders)
        for r in range(rounds):
            order = ("pulmo", "storescp") if r % 2 == 0 else ("storescp", "pulmo")
            for receiver in order:
                run = (run_pulmo if receiver == "pulmo" else run_storescp)(key, senders, nodelay)
                run.update(case=key, label=label, receiver=receiver, round=r, expected=expected,
                           nodelay=nodelay, senders=len(senders), mean_bytes=mean_bytes)
                results.write(json.dumps(run) + "\n")
                results.flush()
                rows.append(run)
                say(f"{key:10} r{r} {receiver:8} {run['received']:5}/{expected} in {run['wall']:7.2f} s "
                    f"= {run['received'] / run['wall']:7.1f} inst/s  rcs={run['rcs']}"
                    + (f"  rss={run['peak_rss_mb']:.0f} MB" if receiver == "pulmo" else "")
                    + (f"  {run['notes'][:2]}" if run["notes"] else ""))
    write_section(rows, cases, mean_bytes, n_series)
    shutil.rmtree(WORK, ignore_errors=True)


def write_section(rows, cases, mean_bytes, n_series):
    def med(key, receiver, f):
        xs = [f(x) for x in rows if x["case"] == key and x["receiver"] == receiver]
        return statistics.median(xs) if xs else None

    rate = lambda x: x["received"] / x["wall"]
    lines = [
        "## Ingest over DICOM (C-STORE SCP)",
        "",
        f"`scripts/bench/ingest` (RUNS={RUNS}) — {datetime.date.today().isoformat()}, {os.cpu_count()} cores, "
        "loopback. DCMTK `storescu` (3.6.7) sends "
        f"{os.path.basename(DATA)} ({n_series} CT slices, {mean_bytes / 1e3:.0f} kB each, Explicit VR LE) to "
        "`pulmo serve` (before each C-STORE response: the instance file written with O_DIRECT and "
        "fsynced, renamed into the spool, the directory fsynced, and the row committed to SQLite "
        "(WAL, synchronous=FULL); a fresh spool and database per run, quiet_seconds = 3600) and to DCMTK "
        "`storescp +uf -od DIR` (no --fork; writes each file without fsync; +uf: a unique file name per received object, so a resent instance is a new file, as it is a new acknowledgement). Receivers alternate, "
        "the first one alternating per round; medians. inst/s = instances the receiver stored "
        "(pulmo: acknowledged, from /metrics; storescp: files in its folder) / wall time of the "
        "senders from start to the last exit; MB/s = inst/s x the mean file size (10^6 bytes).",
        "",
        "| case | TCP_NODELAY | runs | pulmo inst/s | pulmo MB/s | storescp inst/s | storescp MB/s | pulmo/storescp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, label, senders, nodelay, rounds in cases:
        p, s = med(key, "pulmo", rate), med(key, "storescp", rate)
        if p is None or s is None:
            continue
        lines.append(f"| {label} | {'1' if nodelay else 'unset (default)'} | {rounds} | {p:.1f} | "
                     f"{p * mean_bytes / 1e6:.1f} | {s:.1f} | {s * mean_bytes / 1e6:.1f} | {p / s:.2f} |")
    lines += ["", "Per run (instances received / expected, wall seconds, senders' exit statuses):", ""]
    for key, label, senders, nodelay, rounds in cases:
        for receiver in ("pulmo", "storescp"):
            xs = [x for x in rows if x["case"] == key and x["receiver"] == receiver]
            if not xs:
                continue
            runs = "; ".join(f"{x['received']}/{x['expected']} in {x['wall']:.2f} s"
                             + ("" if not any(x["rcs"]) else f" (exit {','.join(map(str, x['rcs']))})")
                             for x in xs)
            lines.append(f"- {key}, {receiver}: {runs}")
    # 8 senders: what happened to each sender.
    for key in ("c8", "default-c8"):
        for receiver in ("pulmo", "storescp"):
            xs = [x for x in rows if x["case"] == key and x["receiver"] == receiver]
            if not xs:
                continue
            failed = sum(1 for x in xs for rc in x["rcs"] if rc != 0)
            total = sum(len(x["rcs"]) for x in xs)
            ends = statistics.median(statistics.median(x["ends"]) for x in xs)
            notes = sorted({n for x in xs for n in x["notes"]})
            lines.append(f"- {key}, {receiver}: {total - failed}/{total} senders exited 0 over {len(xs)} runs; "
                         f"median sender finished after {ends:.1f} s"
                         + (f"; sender errors: {' / '.join('`' + n[:140] + '`' for n in notes[:3])}" if notes else ""))
    peak = max((x["peak_rss_mb"] for x in rows if x["receiver"] == "pulmo"), default=0)
    peaks = {key: max((x["peak_rss_mb"] for x in rows if x["receiver"] == "pulmo" and x["case"] == key), default=0)
             for key, *_ in cases}
    idle = statistics.median(x["idle_rss_mb"] for x in rows if x["receiver"] == "pulmo") if peak else 0
    dup = [x for x in rows if x["case"] == "repeat" and x["receiver"] == "pulmo"]
    lines += [
        "",
        f"pulmo peak RSS (VmHWM at the end of each run, before SIGTERM): {peak:.0f} MB at most "
        f"({', '.join(f'{k} {v:.0f} MB' for k, v in peaks.items() if v)}); "
        f"RSS right after start-up (listening, before any association): {idle:.0f} MB median.",
        "",
        "Caveats: storescp does not fsync (its files may still be in the page cache when it "
        "answers), pulmo fsyncs the instance file and commits to SQLite (synchronous=FULL) per "
        "instance before answering, so the two do not promise the same thing. In the repeated-folder "
        "row only the first copy is new to pulmo: a resent instance with the same content is "
        "recognised (one SQLite read and a byte comparison with the stored file) and acknowledged "
        "without a new write or fsync"
        + (f" (the database held {dup[0]['distinct_stored']} instances after {dup[0]['received']} acknowledged)" if dup else "")
        + ", while storescp writes it again; the rows with new UIDs are the durable-write "
        "figure. Without TCP_NODELAY the DCMTK tools wait on Nagle/delayed ACKs, so the "
        "default-settings rows measure that latency, not the receivers; hence the single series there. "
        "storescp without --fork serves one association at a time: the other senders' "
        "connections wait in the listen backlog, and storescu gives up on an association "
        "after its 30 s ACSE timeout. " + KEPT_NOTE + " Single runs vary on this shared virtual "
        "machine; the per-run figures above show the spread.",
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    text = open(DOC).read()
    pattern = re.compile(r"## Ingest over DICOM \(C-STORE SCP\).*?(?=\n## |\Z)", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    open(DOC, "w").write(text)


if __name__ == "__main__":
    try:
        main()
    finally:
        if os.environ.get("KEEP_WORK") != "1":
            shutil.rmtree(WORK, ignore_errors=True)
